/* H5_CHECK (abort on an internal HDF5 error) for the files of host/io that own HDF5 and build what they write
 * (h5.c, descriptors_io.c; store.c turns failures into messages naming the file instead); includes hdf5.h, so
 * nothing outside host/io includes this header. */
#ifndef MUSAE_H5_CHECK_H
#define MUSAE_H5_CHECK_H

#include <hdf5.h>

#include "host/core/check.h"
#include "host/io/h5.h"

/* Negative herr_t / hid_t: print HDF5's own error stack, then abort (an internal error, not bad input). */
#define H5_CHECK(expr)                                                                                     \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY((expr) < 0)) {                                                                  \
            H5Eprint2(H5E_DEFAULT, stderr);                                                                \
            musae_check_failed("HDF5", #expr, __func__, __FILE__, __LINE__, "HDF5 call failed");           \
        }                                                                                                  \
    } while (0)

#endif /* MUSAE_H5_CHECK_H */
