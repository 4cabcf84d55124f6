// For the musl smoke tests only (scripts/dist/smoke-platforms.mjs), never shipped. Bun's musl
// builds need libstdc++.so.6, and no registry we use ships a musl-built one, so the smoke tests run
// them with Debian's (glibc-built) libstdc++ and libgcc_s. musl's loader already answers for
// libc.so.6 and libm.so.6; this library, preloaded (LD_PRELOAD; on x86_64 also under the name
// ld-linux-x86-64.so.2, which libstdc++ names), defines the few glibc-only symbols they use.
#define _GNU_SOURCE
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <time.h>

// glibc's fast path for single-threaded processes; 0 = "assume threads" (always correct).
char __libc_single_threaded = 0;

// Only for libgcc_s's unwinder: -1 makes it fall back to dl_iterate_phdr.
int _dl_find_object (void *pc, void *result) { (void)pc; (void)result; return -1; }

// x86 CPU detection data that libgcc_s reads; zero = no optional features.
struct { unsigned int vendor, type, subtype, features[1]; } __cpu_model;
int __cpu_indicator_init (void) { return 0; }

size_t __strftime_l (char *s, size_t n, const char *f, const struct tm *tm, locale_t l) {
  return strftime_l(s, n, f, tm, l);
}

unsigned long __getauxval (unsigned long type) { return getauxval(type); }

uint32_t arc4random (void) {
  uint32_t v = 0;
  while (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {}
  return v;
}

// thread_local destructors (C++11): run at thread exit through a pthread key.
struct dtor { void (*fn)(void *); void *obj; struct dtor *next; };
static pthread_key_t dtor_key;
static pthread_once_t dtor_once = PTHREAD_ONCE_INIT;
static void run_dtors (void *head) {
  for (struct dtor *d = head, *next; d; d = next) { next = d->next; d->fn(d->obj); free(d); }
}
static void make_key (void) { pthread_key_create(&dtor_key, run_dtors); }
int __cxa_thread_atexit_impl (void (*fn)(void *), void *obj, void *dso) {
  (void)dso;
  pthread_once(&dtor_once, make_key);
  struct dtor *d = malloc(sizeof *d);
  if (!d) return -1;
  *d = (struct dtor){ fn, obj, pthread_getspecific(dtor_key) };
  return pthread_setspecific(dtor_key, d);
}
