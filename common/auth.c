/* auth: see auth.h. */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
et_auth_read_key(const char *path, uint8_t **key, size_t *len, char *err,
                 size_t err_size)
{
    *key = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, err_size, "key file %s: %s", path, strerror(e));
        return e;
    }
    uint8_t *k = malloc(ET_AUTH_KEY_MAX);
    size_t n = k ? fread(k, 1, ET_AUTH_KEY_MAX, f) : 0;
    fclose(f);
    while (n && (k[n - 1] == '\n' || k[n - 1] == '\r')) {
        n--;
    }
    if (!n) {
        snprintf(err, err_size, "key file %s: empty", path);
        free(k);
        return EINVAL;
    }
    *key = k;
    *len = n;
    return 0;
}

void
et_auth_http_token(const uint8_t *key, size_t len,
                   char out[ET_AUTH_TOKEN_LEN + 1])
{
    static const char label[] = "edgetrain-http-v1";
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!HMAC(EVP_sha256(), key, (int) len, (const uint8_t *) label,
              sizeof label - 1, mac, &n) || n * 2 != ET_AUTH_TOKEN_LEN) {
        return;
    }
    for (unsigned int i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    }
}

int
et_auth_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb) {
        return 0;
    }
    return !CRYPTO_memcmp(a, b, la);
}
