package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchnvr/latch/model"
	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

// apiError is the body of every error response: a stable code, a sentence
// for people, and sometimes more fields (see docs/API.md).
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Our own values always marshal; this is a bug, not client input.
		panic(fmt.Sprintf("web: marshal response: %v", err))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	writeJSON(w, code, apiError{Error: errCode, Message: msg})
}

// badRequest is a 400 naming the problem.
func badRequest(w http.ResponseWriter, errCode, msg string) {
	writeError(w, http.StatusBadRequest, errCode, msg)
}

// decodeError is a client's malformed request: status, code and message.
type decodeError struct {
	status int
	code   string
	msg    string
}

func (e *decodeError) Error() string { return e.msg }

func (e *decodeError) write(w http.ResponseWriter) { writeError(w, e.status, e.code, e.msg) }

// readBody reads a bounded body, enforcing one of the media types.
func readBody(w http.ResponseWriter, r *http.Request, types ...string) ([]byte, string, *decodeError) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return nil, "", &decodeError{http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("Content-Type must be %s", strings.Join(types, " or "))}
	}
	ok := false
	for _, t := range types {
		ok = ok || mt == t
	}
	if !ok {
		return nil, "", &decodeError{http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("Content-Type %s is not accepted here: send %s", mt, strings.Join(types, " or "))}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, "", &decodeError{http.StatusUnsupportedMediaType, "unsupported_media_type", "the only accepted charset is utf-8"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", &decodeError{http.StatusRequestEntityTooLarge, "body_too_large",
				fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
		}
		return nil, "", &decodeError{http.StatusBadRequest, "unreadable_body", "could not read the request body"}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, "", &decodeError{http.StatusBadRequest, "empty_body", "the request body is empty"}
	}
	if !utf8.Valid(body) {
		return nil, "", &decodeError{http.StatusBadRequest, "invalid_utf8", "the request body is not valid UTF-8"}
	}
	return body, mt, nil
}

// decodeJSON reads a JSON object into dst: bounded, UTF-8, no unknown
// fields, one value. It writes the error response and returns false on any
// problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, _, derr := readBody(w, r, "application/json")
	if derr != nil {
		derr.write(w)
		return false
	}
	if derr := unmarshalStrict(body, dst); derr != nil {
		derr.write(w)
		return false
	}
	return true
}

func unmarshalStrict(body []byte, dst any) *decodeError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return &decodeError{http.StatusBadRequest, "malformed_json", "trailing data after the JSON value"}
	}
	return nil
}

func jsonError(err error) *decodeError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return &decodeError{http.StatusBadRequest, "malformed_json", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &decodeError{http.StatusBadRequest, "malformed_json", fmt.Sprintf("the body must be a JSON object, not %s", te.Value)}
		}
		return &decodeError{http.StatusBadRequest, "invalid_field", fmt.Sprintf("field %q must be %s, not %s", field, jsonKind(te.Type.Kind().String()), te.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &decodeError{http.StatusBadRequest, "malformed_json", "the JSON value ends early"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &decodeError{http.StatusBadRequest, "unknown_field", strings.TrimPrefix(err.Error(), "json: ")}
	}
	return &decodeError{http.StatusBadRequest, "malformed_json", strings.TrimPrefix(err.Error(), "json: ")}
}

func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int") || strings.HasPrefix(k, "uint") || strings.HasPrefix(k, "float"):
		return "a number"
	case k == "bool":
		return "true or false"
	case k == "string":
		return "a string"
	case k == "slice":
		return "an array"
	}
	return "an object"
}

// checkText refuses control characters and over-long values in a free-text
// field (an e-mail address, a display string).
func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", auth.ErrInvalidInput, field)
	}
	if len(v) > max {
		return fmt.Errorf("%w: %s longer than %d bytes", auth.ErrInvalidInput, field, max)
	}
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: %s contains control or format character %U", auth.ErrInvalidInput, field, r)
		}
	}
	return nil
}

// checkUser canonicalises a user name from a request, naming the problem.
func checkUser(field, name string) (model.Principal, error) {
	pr, err := model.CanonicalPrincipal(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", auth.ErrInvalidInput, field, err)
	}
	return pr, nil
}

// after returns the part of msg from the sentinel's text on, dropping the
// "auth: update user: " prefixes of wrapped errors.
func after(msg string, sentinel error) string {
	t := sentinel.Error()
	if i := strings.Index(msg, t); i >= 0 {
		rest := strings.TrimPrefix(msg[i+len(t):], ": ")
		if rest == "" {
			return t
		}
		if sentinel == auth.ErrInvalidInput {
			return rest
		}
		return t + ": " + rest
	}
	return msg
}

// fail answers an error from auth or the store: client mistakes are 4xx
// naming the problem; anything else is logged and a 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	msg := err.Error()
	switch {
	case errors.Is(err, auth.ErrInvalidInput):
		badRequest(w, "invalid_input", after(msg, auth.ErrInvalidInput))
	case errors.Is(err, model.ErrInvalidPolicy):
		badRequest(w, "invalid_policy", msg)
	case errors.Is(err, auth.ErrLastAdmin):
		writeError(w, http.StatusConflict, "last_admin", "refused: this would leave no enabled administrator (R-LASTADMIN)")
	case errors.Is(err, auth.ErrNoUser):
		writeError(w, http.StatusNotFound, "no_such_user", after(msg, auth.ErrNoUser))
	case errors.Is(err, auth.ErrAlreadyActivated):
		writeError(w, http.StatusConflict, "already_activated", "the device is already activated")
	case errors.Is(err, auth.ErrNotActivated):
		writeError(w, http.StatusConflict, "not_activated", "the device is not activated")
	case errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, "exists", "a user with that name already exists")
	case errors.Is(err, auth.ErrNoSession):
		writeError(w, http.StatusUnauthorized, "no_session", "sign in first")
	case errors.Is(err, store.ErrBusy), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "busy", "the device is busy: try again")
	default:
		s.serverError(w, r, err)
	}
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "internal server error")
}

// ceilSeconds rounds a duration up to whole seconds (Retry-After).
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) int64 {
	n := ceilSeconds(d)
	if n > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(n, 10))
	}
	return n
}

// timeJSON formats a unix-nanosecond wall time for JSON (nil for 0).
func timeJSON(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}
