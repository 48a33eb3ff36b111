/* Downloading a data file once, as Keras's get_file does: over HTTP(S) with
 * libcurl, a progress bar, a SHA-256 check, and an atomic rename into place,
 * so the destination either holds the whole verified file or nothing. */
#ifndef NNC_FETCH_H
#define NNC_FETCH_H

#include <stdio.h>

#include "ir/status.h"

typedef struct nnc_fetch_req {
  const char *url;
  const char *dest;   /* the final path; its directory is created when missing */
  const char *sha256; /* 64 hex digits, or NULL to accept any content */
  FILE *progress;     /* "Downloading data from URL" and a bar; NULL: silent */
} nnc_fetch_req;

/* Downloads req->url to req->dest. On failure nothing is left at dest or
 * beside it, and st says what failed (the address, curl's reason or the
 * HTTP status, or both sums on a mismatch). */
int nnc_fetch(const nnc_fetch_req *req, nnc_status *st);

/* The SHA-256 of a file as 64 lowercase hex digits into hex[65]. */
int nnc_sha256_file(const char *path, char hex[65], nnc_status *st);

#endif
