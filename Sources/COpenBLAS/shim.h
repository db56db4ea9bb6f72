#include <cblas.h>
// OpenBLAS's own (exported, not in cblas.h): stops and joins its worker threads.
int blas_thread_shutdown_(void);
