/* HDF5-level pieces shared by the files of host/io that include hdf5.h (h5.c, store.c, store_read.c,
 * descriptors_io.c): the UTF-8 variable-length string type and the reading of a string attribute, so both are
 * written once. The caller holds the HDF5 lock (host/io/h5.h). */
#ifndef MUSAE_H5_INT_H
#define MUSAE_H5_INT_H

#include <hdf5.h>
#include <stddef.h>

/* A new UTF-8 variable-length string type (H5Tclose it). */
hid_t musae_h5_vlen_str_type(void);
/* The value of the open attribute a, a fixed- or variable-length string (as h5py writes either), into out;
 * 0, or -1 when it is not a string or cannot be read. */
int musae_h5_read_attr_str(hid_t a, char *out, size_t cap);

#endif /* MUSAE_H5_INT_H */
