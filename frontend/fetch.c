/* Keras's get_file in C: libcurl for the transfer (redirects, HTTPS, a
 * server's error status), OpenSSL's libcrypto for SHA-256 (libcurl's
 * OpenSSL flavour already loads it, so checking a download adds no library
 * to the process), fit's progress bar counted in bytes.
 *
 * The body goes to a temporary file beside the destination, hashed as it
 * arrives; only a complete transfer whose sum matches is renamed into
 * place. Every failure removes the temporary file, so an interrupted or
 * corrupt download never looks like data to the next run. */
#include "frontend/fetch.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/atomic_file.h"
#include "runtime/backend.h"
#include "runtime/train/progress.h"

static void to_hex(const unsigned char *digest, char hex[65]) {
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

#ifdef NNC_NO_DOWNLOAD
/* A portable build (NNC_PORTABLE) runs where nothing can be reached. */
int nnc_fetch(const nnc_fetch_req *req, nnc_status *st) {
  return nnc_fail(st, "this nnc was built with NNC_PORTABLE, without downloads (wanted %s)", req->url);
}
#else
#include <curl/curl.h>

/* A server that sends nothing for this long is taken as gone. */
#define STALL_SECONDS 60L
#define CONNECT_SECONDS 30L

typedef struct transfer {
  FILE *file;
  FILE *out; /* where the bar goes, made at the first progress report, once the size is known */
  EVP_MD_CTX *sha;
  nnc_progress *bar;
  long long bytes;
  int write_failed;
  double start;
} transfer;

static size_t on_body(char *data, size_t size, size_t count, void *arg) {
  transfer *t = arg;
  size_t n = size * count;
  if (fwrite(data, 1, n, t->file) != n || !EVP_DigestUpdate(t->sha, data, n)) {
    t->write_failed = errno ? errno : EIO;
    return 0; /* makes curl stop with CURLE_WRITE_ERROR */
  }
  t->bytes += (long long)n;
  return n;
}

static int on_progress(void *arg, curl_off_t total, curl_off_t now, curl_off_t up_total, curl_off_t up_now) {
  (void)up_total, (void)up_now;
  transfer *t = arg;
  if (!t->out || now <= 0) return 0;
  if (!t->bar) t->bar = nnc_progress_new(t->out, total > 0 ? (int64_t)total : 0, 1, isatty(fileno(t->out)), t->start);
  if (t->bar) nnc_progress_update(t->bar, (int64_t)now, NULL, NULL, 0, nnc_now());
  return 0;
}

/* mkdir -p for the destination's directory. */
static int make_parent_dirs(const char *dest, nnc_status *st) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dest) >= (int)sizeof path) return nnc_fail(st, "path too long: %s", dest);
  char *slash = strrchr(path, '/');
  if (!slash || slash == path) return 0;
  *slash = 0;
  return nnc_make_dirs(path, st);
}

/* The transfer itself into t; a message in st when it fails. */
static int run_transfer(const nnc_fetch_req *req, transfer *t, nnc_status *st) {
  static int curl_ready;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) return nnc_fail(st, "cannot initialise libcurl");
    curl_ready = 1;
  }
  CURL *c = curl_easy_init();
  if (!c) return nnc_fail(st, "cannot initialise libcurl");
  char why[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, req->url);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "nnc/" NNC_VERSION);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_SECONDS);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc == CURLE_OK) return 0;
  if (t->write_failed) return nnc_fail(st, "writing the download failed: %s", strerror(t->write_failed));
  if (rc == CURLE_HTTP_RETURNED_ERROR) return nnc_fail(st, "the server answered HTTP %ld", status);
  if (rc == CURLE_PARTIAL_FILE)
    return nnc_fail(st, "the transfer was cut short after %lld bytes (%s)", t->bytes, why[0] ? why : curl_easy_strerror(rc));
  return nnc_fail(st, "%s", why[0] ? why : curl_easy_strerror(rc));
}

/* Downloads into the open temporary file, then checks the sum. */
static int download(const nnc_fetch_req *req, FILE *file, nnc_status *st) {
  transfer t = {file, req->progress, EVP_MD_CTX_new(), NULL, 0, 0, nnc_now()};
  if (!t.sha || !EVP_DigestInit_ex(t.sha, EVP_sha256(), NULL)) {
    EVP_MD_CTX_free(t.sha);
    return nnc_fail(st, "cannot set up SHA-256");
  }
  if (req->progress) {
    fprintf(req->progress, "Downloading data from %s\n", req->url);
    fflush(req->progress);
  }
  int rc = run_transfer(req, &t, st);
  if (t.bar) {
    if (rc == 0) nnc_progress_finish(t.bar, NULL, NULL, 0, nnc_now());
    else if (isatty(fileno(req->progress))) fputc('\n', req->progress);
    nnc_progress_free(t.bar);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  int hashed = EVP_DigestFinal_ex(t.sha, digest, &len);
  EVP_MD_CTX_free(t.sha);
  if (rc) return rc;
  if (!hashed || len != 32) return nnc_fail(st, "cannot compute SHA-256");
  char hex[65];
  to_hex(digest, hex);
  if (req->sha256 && strcasecmp(hex, req->sha256))
    return nnc_fail(st, "the download (%lld bytes) has SHA-256 %s, but the published sum is %s: it is corrupt "
                        "or not the file nnc expects",
                    t.bytes, hex, req->sha256);
  return 0;
}

int nnc_fetch(const nnc_fetch_req *req, nnc_status *st) {
  if (make_parent_dirs(req->dest, st)) return -1;
  char tmp[4200];
  /* Beside the destination, so the rename cannot cross file systems. */
  if (snprintf(tmp, sizeof tmp, "%s.part-XXXXXX", req->dest) >= (int)sizeof tmp)
    return nnc_fail(st, "path too long: %s", req->dest);
  int fd = mkstemp(tmp);
  if (fd < 0) return nnc_fail(st, "cannot create %s: %s", tmp, strerror(errno));
  FILE *file = fdopen(fd, "wb");
  if (!file) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return nnc_fail(st, "cannot write %s: %s", tmp, strerror(e));
  }
  int rc = download(req, file, st);
  if (fflush(file) || fsync(fileno(file))) {
    if (!rc) rc = nnc_fail(st, "writing %s failed: %s", tmp, strerror(errno));
  }
  if (fclose(file) && !rc) rc = nnc_fail(st, "writing %s failed: %s", tmp, strerror(errno));
  if (!rc && chmod(tmp, 0644)) rc = nnc_fail(st, "cannot set the mode of %s: %s", tmp, strerror(errno));
  if (!rc && rename(tmp, req->dest)) rc = nnc_fail(st, "cannot rename %s to %s: %s", tmp, req->dest, strerror(errno));
  if (rc) unlink(tmp);
  return rc;
}

#endif

int nnc_sha256_file(const char *path, char hex[65], nnc_status *st) {
  FILE *f = fopen(path, "rb");
  if (!f) return nnc_fail(st, "cannot open %s: %s", path, strerror(errno));
  EVP_MD_CTX *sha = EVP_MD_CTX_new();
  int ok = sha && EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
  unsigned char buf[1 << 15];
  size_t n;
  while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(sha, buf, n);
  int read_error = ferror(f);
  fclose(f);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  ok = ok && !read_error && EVP_DigestFinal_ex(sha, digest, &len) && len == 32;
  EVP_MD_CTX_free(sha);
  if (!ok) return nnc_fail(st, "cannot compute the SHA-256 of %s", path);
  to_hex(digest, hex);
  return 0;
}
