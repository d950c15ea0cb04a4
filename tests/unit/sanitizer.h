/*
 * sanitizer.h - UNDER_SANITIZER: 1 in a build with AddressSanitizer (gcc or
 * clang), where timings and throughput-bound figures mean nothing.
 */
#ifndef LANGOP_TEST_SANITIZER_H
#define LANGOP_TEST_SANITIZER_H

/* Built with AddressSanitizer (gcc or clang): timings mean nothing there. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

#endif
