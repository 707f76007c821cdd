/* SPDX-License-Identifier: MIT */
/* ThreadSanitizer annotations for hand-offs TSAN cannot see (Concurrency Kit's fences are
 * inline assembly, invisible to TSAN). No-ops in other builds. */
#ifndef YGGR_CORE_YGGR_TSAN_H
#define YGGR_CORE_YGGR_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define YGGR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define YGGR_TSAN 1
#endif
#endif

#ifdef YGGR_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
/* Producer: call right BEFORE publishing (e.g. before ck_ring_enqueue_*). */
#define YGGR_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
/* Consumer: call right AFTER taking the item (e.g. after ck_ring_dequeue_*). */
#define YGGR_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
#define YGGR_TSAN_RELEASE(addr) ((void)(addr))
#define YGGR_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

#endif /* YGGR_CORE_YGGR_TSAN_H */
