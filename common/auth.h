/* auth: the cluster key file and the token derived from it for the
 * controller's state-changing HTTP endpoints. See docs/security.md. */
#ifndef ET_AUTH_H
#define ET_AUTH_H 1

#include <stddef.h>
#include <stdint.h>

#define ET_AUTH_KEY_MAX   4096
#define ET_AUTH_TOKEN_LEN 64         /* hex digits of an HMAC-SHA256 */

/* Reads the key file 'path' (trailing newlines dropped; at most
 * ET_AUTH_KEY_MAX bytes) into a malloc'd '*key'. Returns 0 or an errno with
 * a message in 'err'. */
int et_auth_read_key(const char *path, uint8_t **key, size_t *len, char *err,
                     size_t err_size);

/* Writes the HTTP token, hex(HMAC-SHA256(key, "edgetrain-http-v1")), as
 * ET_AUTH_TOKEN_LEN hex digits and a NUL into 'out'. The key itself never
 * leaves the host; the token only opens the controller's POST endpoints. */
void et_auth_http_token(const uint8_t *key, size_t len,
                        char out[ET_AUTH_TOKEN_LEN + 1]);

/* Constant-time comparison of two NUL-terminated strings. */
int et_auth_streq(const char *a, const char *b);

#endif /* ET_AUTH_H */
