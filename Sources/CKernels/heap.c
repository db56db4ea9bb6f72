// Platform: giving freed heap memory back to the system (after the packed engine drops the
// float32 copies of the weights it packed). glibc keeps freed memory in its arenas until
// `malloc_trim`; Darwin's allocator takes `malloc_zone_pressure_relief` (compiled on Apple
// platforms only: untested here); elsewhere (musl, ...) nothing is done.
#include "ckernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#elif defined(__APPLE__)
#include <malloc/malloc.h>
#endif

void tp_trim_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#elif defined(__APPLE__)
    malloc_zone_pressure_relief(NULL, 0);
#endif
}
