/* SPDX-License-Identifier: MIT */
/* Runs a libFuzzer target without libFuzzer: every seed file, then N seeded mutations of
 * them. Used for the fuzz smoke runs of the default test suite (any compiler).
 *   fuzz_smoke_<what> <corpus dir or file>... [--random N] [--seed S] */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seed {
    uint8_t *data;
    size_t size;
};

static struct seed *seeds;
static size_t seed_count;
static size_t seed_cap;

static int load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz smoke: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct seed s = {0};
    size_t cap = 4096;
    s.data = malloc(cap);
    size_t n;
    while (s.data != NULL && (n = fread(s.data + s.size, 1, cap - s.size, f)) > 0) {
        s.size += n;
        if (s.size == cap) {
            cap *= 2;
            s.data = realloc(s.data, cap);
        }
    }
    fclose(f);
    if (s.data == NULL) {
        return -1;
    }
    if (seed_count == seed_cap) {
        seed_cap = seed_cap ? seed_cap * 2 : 64;
        seeds = realloc(seeds, seed_cap * sizeof(*seeds));
        if (seeds == NULL) {
            return -1;
        }
    }
    seeds[seed_count++] = s;
    return 0;
}

static int load_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz smoke: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return load_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", path, e->d_name);
        rc |= load_file(full);
    }
    closedir(d);
    return rc;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* One mutation: bit flips, byte overwrites, truncation, duplication or random bytes. */
static size_t mutate(const struct seed *s, uint8_t *out, size_t cap)
{
    size_t n = s->size < cap ? s->size : cap;
    memcpy(out, s->data, n);
    int rounds = 1 + (int)(rng() % 4);
    for (int r = 0; r < rounds; r++) {
        switch (rng() % 5) {
        case 0:
            if (n > 0) {
                out[rng() % n] ^= (uint8_t)(1u << (rng() % 8));
            }
            break;
        case 1:
            if (n > 0) {
                out[rng() % n] = (uint8_t)rng();
            }
            break;
        case 2:
            n = n > 0 ? (size_t)(rng() % n) : 0;
            break;
        case 3:
            if (n > 0 && n * 2 <= cap) {
                memcpy(out + n, out, n);
                n *= 2;
            }
            break;
        default: {
            size_t add = (size_t)(rng() % 64);
            for (size_t i = 0; i < add && n < cap; i++) {
                out[n++] = (uint8_t)rng();
            }
            break;
        }
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    long random_runs = 0;
    rng_state = 0x9E3779B97F4A7C15ull;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--random") == 0 && i + 1 < argc) {
            random_runs = strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            rng_state = strtoull(argv[++i], NULL, 10) | 1u;
        } else if (load_path(argv[i]) != 0) {
            return 2;
        }
    }
    for (size_t i = 0; i < seed_count; i++) {
        LLVMFuzzerTestOneInput(seeds[i].data, seeds[i].size);
    }
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return 2;
    }
    struct seed empty = {.data = buf, .size = 0};
    for (long r = 0; r < random_runs; r++) {
        const struct seed *s = seed_count > 0 ? &seeds[rng() % seed_count] : &empty;
        uint8_t *copy = malloc(s->size + 1);
        struct seed tmp = {.data = copy, .size = s->size};
        memcpy(copy, s->data, s->size);
        size_t n = mutate(&tmp, buf, cap);
        free(copy);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz smoke: %zu seed inputs and %ld mutations ran, 0 crashes\n", seed_count,
           random_runs);
    free(buf);
    for (size_t i = 0; i < seed_count; i++) {
        free(seeds[i].data);
    }
    free(seeds);
    return 0;
}
