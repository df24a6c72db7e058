// Package web is the NVR's HTTP face: the JSON API under /api/v1/ (see
// docs/API.md) and a server-rendered UI (html/template and a little vanilla
// JavaScript, embedded with embed.FS, no build step).
//
// What it owns: routing, request decoding and its limits (body size, JSON
// shape, UTF-8, content types), sessions as cookies, CSRF protection,
// security headers, the mapping of auth decisions to what a client may see
// (SPEC R-DISCLOSE, R-ENUM), role checks, and serving cameras and
// recordings.
//
// What it must never do: decide lock semantics (package model does, through
// auth.Service), read a clock for lock arithmetic, serve a file named by a
// client (recordings are served by segment id, the file is the one the index
// names, opened inside the data directory with os.Root), answer a client's
// bad input with a 5xx, or panic (a recover middleware turns a bug into a
// logged 500 JSON error).
package web
