#include "regula_mpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every pointer regula_mpi holds, with the name libmpi exports it under: its functions, then its objects. */
#define FUNCTION(field) { "MPI_" #field, offsetof(regula_mpi, field) }
#define OBJECT(field, symbol) { symbol, offsetof(regula_mpi, field) }
static const struct { const char *symbol; size_t offset; } symbols[] = {
    FUNCTION(Initialized), FUNCTION(Finalized), FUNCTION(Init_thread), FUNCTION(Finalize), FUNCTION(Abort),
    FUNCTION(Error_string), FUNCTION(Comm_dup), FUNCTION(Comm_free), FUNCTION(Comm_rank), FUNCTION(Comm_size),
    FUNCTION(Comm_set_errhandler), FUNCTION(Comm_split_type), FUNCTION(Allgather), FUNCTION(Allgatherv),
    FUNCTION(Alltoallv), FUNCTION(Bcast), FUNCTION(Gatherv), FUNCTION(Scatterv),
    OBJECT(comm_world, "ompi_mpi_comm_world"), OBJECT(comm_null, "ompi_mpi_comm_null"),
    OBJECT(float32, "ompi_mpi_float"), OBJECT(float64, "ompi_mpi_double"), OBJECT(byte, "ompi_mpi_byte"),
    OBJECT(int64, "ompi_mpi_int64_t"), OBJECT(errors_return, "ompi_mpi_errors_return"),
    OBJECT(info_null, "ompi_mpi_info_null"),
};

const regula_mpi *regula_mpi_load(char *error, size_t capacity) {
    static regula_mpi mpi;
    static const char install[] = "install Open MPI (Debian or Ubuntu: apt-get install openmpi-bin), or name its "
                                  "libmpi in REGULA_MPI_LIBRARY";
    const char *named = getenv("REGULA_MPI_LIBRARY");
    const char *files[] = { "libmpi.so.40", "libmpi.so" }, *file = NULL;
    void *library = NULL;
    char first[512] = "";
    if (named && *named) {
        if (!(library = dlopen(file = named, RTLD_NOW | RTLD_GLOBAL))) {
            snprintf(error, capacity, "cannot load Open MPI from REGULA_MPI_LIBRARY=%s: %s; name Open MPI's libmpi "
                     "there, or unset it to load the system's", named, dlerror());
            return NULL;
        }
    }
    for (size_t i = 0; i < sizeof files / sizeof *files && !library; i++) {
        if (!(library = dlopen(file = files[i], RTLD_NOW | RTLD_GLOBAL)) && i == 0) snprintf(first, sizeof first, "%s", dlerror());
    }
    if (!library) {
        snprintf(error, capacity, "cannot load Open MPI: tried libmpi.so.40 (%s) and libmpi.so (%s); %s", first,
                 dlerror(), install);
        return NULL;
    }
    for (size_t i = 0; i < sizeof symbols / sizeof *symbols; i++) {
        void *address = dlsym(library, symbols[i].symbol);
        if (!address) {
            snprintf(error, capacity, "%s is not Open MPI's libmpi: it has no symbol %s; %s", file, symbols[i].symbol, install);
            dlclose(library);
            return NULL;
        }
        memcpy((char *)&mpi + symbols[i].offset, &address, sizeof address);
    }
    return &mpi;
}
