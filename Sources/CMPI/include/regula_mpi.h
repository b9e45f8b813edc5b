/*
 * Open MPI, as RegulaDistributed sees it: loaded at run time with dlopen, so that nothing is built against
 * mpi.h and nothing links libmpi. A program that never asks for MPI never loads it.
 *
 * What stands here in place of mpi.h is Open MPI's ABI, as Debian's Open MPI 4.1 mpi.h declares it
 * (/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h): handles are pointers to Open MPI's own structs, the
 * predefined ones (MPI_COMM_WORLD, MPI_FLOAT, ...) are the addresses of global objects named ompi_mpi_*, and
 * the constants below are copied from that header. Another MPI (MPICH's integer handles) has other values;
 * regula_mpi_load refuses a library without the ompi_mpi_* objects, so these values are only ever used with
 * the library they belong to.
 */
#ifndef REGULA_MPI_H
#define REGULA_MPI_H

#include <stddef.h>

#pragma clang assume_nonnull begin

typedef struct ompi_communicator_t *MPI_Comm;
typedef struct ompi_datatype_t *MPI_Datatype;
typedef struct ompi_errhandler_t *MPI_Errhandler;
typedef struct ompi_info_t *MPI_Info;

#define REGULA_MPI_SUCCESS 0             /* MPI_SUCCESS */
#define REGULA_MPI_THREAD_SERIALIZED 2   /* MPI_THREAD_SERIALIZED: SINGLE, FUNNELED, SERIALIZED, MULTIPLE */
#define REGULA_MPI_COMM_TYPE_SHARED 0    /* MPI_COMM_TYPE_SHARED, the first of its enum */
#define REGULA_MPI_MAX_ERROR_STRING 256  /* MPI_MAX_ERROR_STRING (OPAL_MAX_ERROR_STRING) */

/* MPI_IN_PLACE, ((void *) 1): a send buffer that says this rank's data is already in the receive buffer. */
static inline const void *regula_mpi_in_place(void) { return (const void *)1; }

/*
 * The MPI functions RegulaDistributed calls, each field named after its function without the MPI_ prefix and
 * with its mpi.h signature, and the predefined handles it uses. Filled once and never changed, so Swift may
 * share it between threads (Sendable); the Communicator makes one MPI call at a time.
 */
typedef struct __attribute__((swift_attr("@Sendable"))) regula_mpi {
    int (*Initialized)(int *flag);
    int (*Finalized)(int *flag);
    int (*Init_thread)(int *_Nullable argc, char *_Nullable *_Nullable *_Nullable argv, int required, int *provided);
    int (*Finalize)(void);
    int (*Abort)(MPI_Comm comm, int errorcode);
    int (*Error_string)(int errorcode, char *string, int *resultlen);
    int (*Comm_dup)(MPI_Comm comm, MPI_Comm _Nonnull *_Nonnull newcomm);
    int (*Comm_free)(MPI_Comm _Nonnull *_Nonnull comm);
    int (*Comm_rank)(MPI_Comm comm, int *rank);
    int (*Comm_size)(MPI_Comm comm, int *size);
    int (*Comm_set_errhandler)(MPI_Comm comm, MPI_Errhandler errhandler);
    int (*Comm_split_type)(MPI_Comm comm, int split_type, int key, MPI_Info info, MPI_Comm _Nonnull *_Nonnull newcomm);
    int (*Allgather)(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, int recvcount,
                     MPI_Datatype recvtype, MPI_Comm comm);
    int (*Allgatherv)(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *recvbuf, const int *recvcounts,
                      const int *displs, MPI_Datatype recvtype, MPI_Comm comm);
    int (*Alltoallv)(const void *sendbuf, const int *sendcounts, const int *sdispls, MPI_Datatype sendtype,
                     void *recvbuf, const int *recvcounts, const int *rdispls, MPI_Datatype recvtype, MPI_Comm comm);
    int (*Bcast)(void *buffer, int count, MPI_Datatype datatype, int root, MPI_Comm comm);
    int (*Gatherv)(const void *sendbuf, int sendcount, MPI_Datatype sendtype, void *_Nullable recvbuf,
                   const int *recvcounts, const int *displs, MPI_Datatype recvtype, int root, MPI_Comm comm);
    int (*Scatterv)(const void *_Nullable sendbuf, const int *sendcounts, const int *displs, MPI_Datatype sendtype,
                    void *recvbuf, int recvcount, MPI_Datatype recvtype, int root, MPI_Comm comm);

    MPI_Comm comm_world;            /* MPI_COMM_WORLD: &ompi_mpi_comm_world */
    MPI_Comm comm_null;             /* MPI_COMM_NULL: &ompi_mpi_comm_null */
    MPI_Datatype float32;           /* MPI_FLOAT: &ompi_mpi_float */
    MPI_Datatype float64;           /* MPI_DOUBLE: &ompi_mpi_double */
    MPI_Datatype byte;              /* MPI_BYTE: &ompi_mpi_byte */
    MPI_Datatype int64;             /* MPI_INT64_T: &ompi_mpi_int64_t */
    MPI_Errhandler errors_return;   /* MPI_ERRORS_RETURN: &ompi_mpi_errors_return */
    MPI_Info info_null;             /* MPI_INFO_NULL: &ompi_mpi_info_null */
} regula_mpi;

/**
 * Loads Open MPI's libmpi into this process and returns its functions and predefined handles. The file is the
 * one named by the environment variable REGULA_MPI_LIBRARY, or else libmpi.so.40 (Open MPI 4.1's soname) then
 * libmpi.so, found as dlopen finds libraries. It is opened with RTLD_NOW | RTLD_GLOBAL: Open MPI loads
 * components of its own that look for libmpi's symbols globally.
 *
 * Returns the table (which stays valid for the life of the process), or NULL with `error` holding a sentence
 * that names the file, why it failed (dlerror's words, or the symbol it lacks) and what to do; on failure
 * nothing stays loaded. Not thread-safe (two loads would race to fill the one table): call it once, as
 * RegulaDistributed's Communicator does.
 */
const regula_mpi *_Nullable regula_mpi_load(char *error, size_t capacity);

#pragma clang assume_nonnull end

#endif
