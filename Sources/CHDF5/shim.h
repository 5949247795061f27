#ifndef SEGKIT_CHDF5_SHIM_H
#define SEGKIT_CHDF5_SHIM_H

#include <hdf5.h>

/* HDF5 exposes its predefined types, property lists and flags as macros that
   expand to globals behind H5open(); Swift cannot import those, so each one
   SegKit needs is wrapped in a static inline function. */
static inline hid_t segkit_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t segkit_h5s_all(void) { return H5S_ALL; }
static inline unsigned segkit_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned segkit_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline unsigned segkit_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned segkit_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline size_t segkit_h5t_variable(void) { return H5T_VARIABLE; }
static inline hid_t segkit_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }

static inline hid_t segkit_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t segkit_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t segkit_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t segkit_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t segkit_h5t_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t segkit_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t segkit_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t segkit_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t segkit_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t segkit_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t segkit_h5t_c_s1(void) { return H5T_C_S1; }
static inline hid_t segkit_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t segkit_h5t_std_i64le(void) { return H5T_STD_I64LE; }

/* Stop HDF5 printing its error stack to stderr: SegKit turns every failure
   into a Swift error that names the file and the object instead. */
static inline void segkit_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

#endif
