/*
 * Open MPI, as RegulaDistributed sees it. Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_IN_PLACE,
 * ...) are macros over the addresses of global objects, which Swift's C importer does not turn into values, so
 * they are handed out by these accessors. Every other MPI function is called directly.
 */
#ifndef REGULA_CMPI_SHIM_H
#define REGULA_CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm regula_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm regula_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype regula_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype regula_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype regula_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype regula_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Errhandler regula_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Info regula_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline void *regula_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int regula_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int regula_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int regula_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }

#endif
