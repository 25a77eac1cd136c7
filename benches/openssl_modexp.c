/* Baseline for the threshold-RSA share benchmark: OpenSSL's constant-time Montgomery exponentiation
 * (BN_mod_exp_mont_consttime) of a random base modulo a random odd 2048-bit modulus with a 2056-bit exponent,
 * the size of 2*Delta*s_i in a 3-of-5 share. Prints the wall-time median of 200 runs and the mean CPU time.
 * Built and run by benches/openssl_modexp.sh. */
#include <openssl/bn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int mod_bits = argc > 1 ? atoi(argv[1]) : 2048;
    int exp_bits = argc > 2 ? atoi(argv[2]) : mod_bits + 8;
    enum { RUNS = 200 };
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *n = BN_new(), *x = BN_new(), *e = BN_new(), *r = BN_new();
    BN_rand(n, mod_bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD);
    BN_rand_range(x, n);
    BN_rand(e, exp_bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
    BN_MONT_CTX *mont = BN_MONT_CTX_new();
    BN_MONT_CTX_set(mont, n, ctx);
    double t[RUNS];
    struct timespec c0, c1;
    for (int i = 0; i < 10; i++) BN_mod_exp_mont_consttime(r, x, e, n, ctx, mont); /* warm-up, not timed */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (int i = 0; i < RUNS; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        BN_mod_exp_mont_consttime(r, x, e, n, ctx, mont);
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[i] = (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = ((c1.tv_sec - c0.tv_sec) * 1e6 + (c1.tv_nsec - c0.tv_nsec) / 1e3) / RUNS;
    qsort(t, RUNS, sizeof t[0], cmp);
    printf("openssl BN_mod_exp_mont_consttime %d-bit modulus, %d-bit exponent: wall median %.1f us (min %.1f us), "
           "cpu mean %.1f us\n", mod_bits, exp_bits, t[RUNS / 2], t[0], cpu);
    return 0;
}
