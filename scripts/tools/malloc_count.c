// SPDX-License-Identifier: Apache-2.0
// LD_PRELOAD malloc/calloc/realloc counter: prints "MALLOC-COUNT malloc=N calloc=N realloc=N" to
// stderr at exit. Used by scripts/bench-allocs.sh to show the live loop allocates nothing per packet.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <unistd.h>
static atomic_ulong n_malloc, n_calloc, n_realloc;
static void *(*real_malloc)(size_t); static void *(*real_calloc)(size_t,size_t); static void *(*real_realloc)(void*,size_t);
static char boot[4096]; static size_t boot_used;
void *malloc(size_t s){ if(!real_malloc){ real_malloc=dlsym(RTLD_NEXT,"malloc"); } atomic_fetch_add(&n_malloc,1); return real_malloc(s); }
void *calloc(size_t a,size_t b){ if(!real_calloc){ void *p=boot+boot_used; boot_used+=(a*b+15)&~15UL; if(boot_used>sizeof boot) return 0; return p; } atomic_fetch_add(&n_calloc,1); return real_calloc(a,b); }
void *realloc(void*p,size_t s){ if(!real_realloc) real_realloc=dlsym(RTLD_NEXT,"realloc"); atomic_fetch_add(&n_realloc,1); return real_realloc(p,s); }
__attribute__((constructor)) static void init(void){ real_calloc=dlsym(RTLD_NEXT,"calloc"); }
__attribute__((destructor)) static void fini(void){ char b[200]; int k=snprintf(b,sizeof b,"MALLOC-COUNT malloc=%lu calloc=%lu realloc=%lu\n",n_malloc,n_calloc,n_realloc); write(2,b,k); }
