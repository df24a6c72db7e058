package web

import (
	"net/http"
	"strings"
	"testing"
)

func TestOversizedBody(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	huge := `{"username":"admin","password":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	for _, tc := range []struct {
		c      *client
		method string
		path   string
	}{
		{r.client(""), "POST", "/api/v1/login"},
		{r.client(""), "POST", "/api/v1/activate"},
		{r.client(""), "POST", "/api/v1/recovery/start"},
		{r.client(""), "POST", "/api/v1/recovery/finish"},
		{admin, "PATCH", "/api/v1/settings"},
		{admin, "POST", "/api/v1/locks/unlock"},
		{admin, "PUT", "/api/v1/policy"},
		{admin, "POST", "/api/v1/users"},
	} {
		resp, body := tc.c.do(tc.method, tc.path, huge)
		wantError(t, resp, body, http.StatusRequestEntityTooLarge, "body_too_large")
	}
}

func TestUnknownFieldAndInvalidUTF8(t *testing.T) {
	r := newRig(t)
	r.activate()
	c := r.client("")
	resp, body := c.do("POST", "/api/v1/login", `{"username":"admin","password":"x","remember_me":true}`)
	wantError(t, resp, body, http.StatusBadRequest, "unknown_field")
	if !strings.Contains(string(body), "remember_me") {
		t.Fatalf("unknown field not named: %s", body)
	}
	resp, body = c.do("POST", "/api/v1/login", "{\"username\":\"adm\xffin\",\"password\":\"x\"}")
	wantError(t, resp, body, http.StatusBadRequest, "invalid_utf8")
}

// Bad input of every kind is a 4xx naming the problem, never a 5xx.
func TestBadInputTable(t *testing.T) {
	r := newRig(t)
	admin := r.adminClient("")
	admin.addUser("bob", bobPW, "viewer")
	anon := r.client("")
	long := strings.Repeat("a", 300)
	cases := []struct {
		name   string
		c      *client
		method string
		path   string
		ctype  string // "" keeps the default (application/json when a body is sent)
		body   any
		status int
		code   string
	}{
		{"no content type", anon, "POST", "/api/v1/login", "-", `{}`, 415, "unsupported_media_type"},
		{"text/plain", anon, "POST", "/api/v1/login", "text/plain", `{"username":"a","password":"b"}`, 415, "unsupported_media_type"},
		{"form encoded", anon, "POST", "/api/v1/login", "application/x-www-form-urlencoded", `username=a&password=b`, 415, "unsupported_media_type"},
		{"latin1 charset", anon, "POST", "/api/v1/login", "application/json; charset=latin1", `{}`, 415, "unsupported_media_type"},
		{"garbage content type", anon, "POST", "/api/v1/login", ";;;", `{}`, 415, "unsupported_media_type"},
		{"empty body", anon, "POST", "/api/v1/login", "", ``, 400, "empty_body"},
		{"malformed JSON", anon, "POST", "/api/v1/login", "", `{"username":`, 400, "malformed_json"},
		{"syntax error", anon, "POST", "/api/v1/login", "", `{username:1}`, 400, "malformed_json"},
		{"trailing data", anon, "POST", "/api/v1/login", "", `{"username":"a","password":"b"}{}`, 400, "malformed_json"},
		{"array", anon, "POST", "/api/v1/login", "", `["admin","pw"]`, 400, "malformed_json"},
		{"string", anon, "POST", "/api/v1/login", "", `"admin"`, 400, "malformed_json"},
		{"wrong type", anon, "POST", "/api/v1/login", "", `{"username":1,"password":"b"}`, 400, "invalid_field"},
		{"null password", anon, "POST", "/api/v1/login", "", `{"username":"a","password":null}`, 400, "invalid_input"},
		{"missing password", anon, "POST", "/api/v1/login", "", `{"username":"a"}`, 400, "invalid_input"},
		{"empty user name", anon, "POST", "/api/v1/login", "", `{"username":"  ","password":"b"}`, 400, "invalid_input"},
		{"huge user name", anon, "POST", "/api/v1/login", "", `{"username":"` + long + `","password":"b"}`, 400, "invalid_input"},
		{"NUL in user name", anon, "POST", "/api/v1/login", "", `{"username":"ad\u0000min","password":"b"}`, 400, "invalid_input"},
		{"escape char in user name", anon, "POST", "/api/v1/login", "", `{"username":"ad\u001bmin","password":"b"}`, 400, "invalid_input"},
		{"zero-width space", anon, "POST", "/api/v1/login", "", `{"username":"ad\u200bmin","password":"b"}`, 400, "invalid_input"},
		{"bidi override", anon, "POST", "/api/v1/login", "", `{"username":"\u202eadmin","password":"b"}`, 400, "invalid_input"},
		{"huge password", anon, "POST", "/api/v1/login", "", `{"username":"a","password":"` + strings.Repeat("p", 2000) + `"}`, 400, "invalid_input"},
		{"long totp", anon, "POST", "/api/v1/login", "", `{"username":"a","password":"b","totp":"` + long + `"}`, 400, "invalid_input"},
		{"recovery start malformed", anon, "POST", "/api/v1/recovery/start", "", `{"username":`, 400, "malformed_json"},
		{"recovery start unknown field", anon, "POST", "/api/v1/recovery/start", "", `{"username":"bob","email":"x@y"}`, 400, "unknown_field"},
		{"recovery start no name", anon, "POST", "/api/v1/recovery/start", "", `{}`, 400, "invalid_input"},
		{"recovery start control chars", anon, "POST", "/api/v1/recovery/start", "", `{"username":"b\u0000ob"}`, 400, "invalid_input"},
		{"recovery start huge name", anon, "POST", "/api/v1/recovery/start", "", `{"username":"` + long + `"}`, 400, "invalid_input"},
		{"recovery start wrong type", anon, "POST", "/api/v1/recovery/start", "", `{"username":["bob"]}`, 400, "invalid_field"},
		{"recovery start text/plain", anon, "POST", "/api/v1/recovery/start", "text/plain", `{"username":"bob"}`, 415, "unsupported_media_type"},
		{"recovery finish no code", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob","new_password":"` + bobPW + `"}`, 400, "invalid_input"},
		{"recovery finish bad code", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob","code":"12-34","new_password":"` + bobPW + `"}`, 400, "invalid_input"},
		{"recovery finish huge code", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob","code":"` + long + `","new_password":"` + bobPW + `"}`, 400, "invalid_input"},
		{"recovery finish weak password", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob","code":"123456","new_password":"bob"}`, 400, "invalid_input"},
		{"recovery finish huge password", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob","code":"123456","new_password":"` + strings.Repeat("p", 2000) + `"}`, 400, "invalid_input"},
		{"recovery finish unknown field", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob","code":"123456","password":"x"}`, 400, "unknown_field"},
		{"recovery finish trailing", anon, "POST", "/api/v1/recovery/finish", "", `{"username":"bob"}[]`, 400, "malformed_json"},
		{"settings bad policy", admin, "PATCH", "/api/v1/settings", "", `{"sessions_policy":"drop"}`, 400, "invalid_input"},
		{"settings not admin", nil, "GET", "/api/v1/settings", "", nil, 403, "forbidden"},
		{"activate again", anon, "POST", "/api/v1/activate", "", `{"username":"x","password":"` + adminPW + `","pin":"123456"}`, 409, "already_activated"},
		{"unlock nothing", admin, "POST", "/api/v1/locks/unlock", "", `{}`, 400, "invalid_input"},
		{"unlock all and user", admin, "POST", "/api/v1/locks/unlock", "", `{"all":true,"user":"bob"}`, 400, "invalid_input"},
		{"unlock bad source", admin, "POST", "/api/v1/locks/unlock", "", `{"user":"bob","source":"10.0.0.0/8"}`, 400, "invalid_input"},
		{"unlock control chars", admin, "POST", "/api/v1/locks/unlock", "", `{"user":"\u0007"}`, 400, "invalid_input"},
		{"unlock all not bool", admin, "POST", "/api/v1/locks/unlock", "", `{"all":"yes"}`, 400, "invalid_field"},
		{"audit bad since", admin, "GET", "/api/v1/audit?since=yesterday", "", nil, 400, "invalid_query"},
		{"audit bad limit", admin, "GET", "/api/v1/audit?limit=0", "", nil, 400, "invalid_query"},
		{"audit huge limit", admin, "GET", "/api/v1/audit?limit=99999999999999999999", "", nil, 400, "invalid_query"},
		{"audit bad format", admin, "GET", "/api/v1/audit?format=xml", "", nil, 400, "invalid_query"},
		{"audit bad user", admin, "GET", "/api/v1/audit?user=%00", "", nil, 400, "invalid_query"},
		{"audit bad source", admin, "GET", "/api/v1/audit?source=example.com", "", nil, 400, "invalid_query"},
		{"audit bad outcome", admin, "GET", "/api/v1/audit?outcome=DROP%20TABLE", "", nil, 400, "invalid_query"},
		{"audit reversed range", admin, "GET", "/api/v1/audit?since=2026-11-27&until=2026-11-26", "", nil, 400, "invalid_query"},
		{"audit repeated param", admin, "GET", "/api/v1/audit?user=a&user=b", "", nil, 400, "invalid_query"},
		{"audit year 9999", admin, "GET", "/api/v1/audit?since=9999-01-01", "", nil, 400, "invalid_query"},
		{"audit before 1970", admin, "GET", "/api/v1/audit?until=1969-12-31T23:59:59Z", "", nil, 400, "invalid_query"},
		{"recordings year 3000", admin, "GET", "/api/v1/recordings?from=3000-01-01&to=3000-01-02", "", nil, 400, "invalid_query"},
		{"audit bad before", admin, "GET", "/api/v1/audit?before=-5", "", nil, 400, "invalid_query"},
		{"policy bad YAML", admin, "PUT", "/api/v1/policy", "", `{"yaml":"pair: [unclosed"}`, 400, "invalid_policy"},
		{"policy unknown field", admin, "PUT", "/api/v1/policy", "", `{"yaml":"preset: latch\nbogus: 1\n"}`, 400, "invalid_policy"},
		{"policy unknown preset", admin, "PUT", "/api/v1/policy", "", `{"yaml":"preset: nope\n"}`, 400, "invalid_policy"},
		{"policy incoherent", admin, "PUT", "/api/v1/policy", "", `{"yaml":"preset: latch\npair:\n  growth: 0.5\n"}`, 400, "invalid_policy"},
		{"policy JSON unknown field", admin, "PUT", "/api/v1/policy", "", `{"yaml":"preset: latch\n","force":true}`, 400, "unknown_field"},
		{"policy empty", admin, "POST", "/api/v1/policy/validate", "", `{"yaml":""}`, 400, "invalid_policy"},
		{"policy yaml alias bomb", admin, "POST", "/api/v1/policy/validate", "application/yaml", "a: &a [*a, *a, *a]\nb: &b [*a, *a]\n", 400, "invalid_policy"},
		{"policy wrong type", admin, "POST", "/api/v1/policy/prove", "image/png", "x", 415, "unsupported_media_type"},
		{"user bad role", admin, "POST", "/api/v1/users", "", `{"name":"carol","password":"` + bobPW + `","role":"root"}`, 400, "invalid_input"},
		{"user huge name", admin, "POST", "/api/v1/users", "", `{"name":"` + long + `","password":"` + bobPW + `","role":"viewer"}`, 400, "invalid_input"},
		{"user control email", admin, "POST", "/api/v1/users", "", `{"name":"carol","password":"` + bobPW + `","role":"viewer","email":"a@b\n.c"}`, 400, "invalid_input"},
		{"user bad expiry", admin, "POST", "/api/v1/users", "", `{"name":"carol","password":"` + bobPW + `","role":"viewer","expires_at":"soon"}`, 400, "invalid_input"},
		{"patch nothing", admin, "PATCH", "/api/v1/users/bob", "", `{}`, 400, "invalid_input"},
		{"patch bad role", admin, "PATCH", "/api/v1/users/bob", "", `{"role":"god"}`, 400, "invalid_input"},
		{"patch unknown user", admin, "PATCH", "/api/v1/users/nobody", "", `{"role":"viewer"}`, 404, "no_such_user"},
		{"patch control user", admin, "PATCH", "/api/v1/users/%07", "", `{"role":"viewer"}`, 400, "invalid_input"},
		{"reset weak password", admin, "POST", "/api/v1/users/bob/password", "", `{"password":"bob"}`, 400, "invalid_input"},
		{"delete unknown", admin, "DELETE", "/api/v1/users/nobody", "", nil, 404, "no_such_user"},
		{"session id malformed", admin, "DELETE", "/api/v1/users/bob/sessions/..%2F..", "", nil, 400, "invalid_input"},
		{"session id unknown", admin, "DELETE", "/api/v1/users/bob/sessions/" + strings.Repeat("A", 43), "", nil, 404, "no_such_session"},
		{"recording id text", admin, "GET", "/api/v1/recordings/abc", "", nil, 400, "invalid_input"},
		{"recording id zero", admin, "GET", "/api/v1/recordings/0/download", "", nil, 400, "invalid_input"},
		{"recording unknown", admin, "GET", "/api/v1/recordings/12345/download", "", nil, 404, "no_such_recording"},
		{"recordings bad range", admin, "GET", "/api/v1/recordings?from=2026-11-27&to=2026-11-26", "", nil, 400, "invalid_query"},
		{"recordings huge range", admin, "GET", "/api/v1/recordings?from=2000-01-01&to=2026-01-01", "", nil, 400, "invalid_query"},
		{"recordings bad limit", admin, "GET", "/api/v1/recordings?limit=1e9", "", nil, 400, "invalid_query"},
		{"recordings unknown camera", admin, "GET", "/api/v1/recordings?camera=nope", "", nil, 404, "no_such_camera"},
		{"play bad speed", admin, "GET", "/api/v1/recordings/1/play?speed=1000", "", nil, 400, "invalid_query"},
		{"camera bad id", admin, "GET", "/api/v1/cameras/CAM%201/live", "", nil, 404, "no_such_camera"},
		{"factory reset unconfirmed", admin, "POST", "/api/v1/system/factory-reset", "", `{"pin":"482915"}`, 400, "confirmation_required"},
		{"factory reset bad pin", admin, "POST", "/api/v1/system/factory-reset", "", `{"pin":"abc","confirm":true}`, 400, "invalid_input"},
		{"totp confirm without start", admin, "POST", "/api/v1/me/totp/confirm", "", `{"code":"1"}`, 409, "no_pending_enrolment"},
		{"own password weak", admin, "POST", "/api/v1/me/password", "", `{"current_password":"x","new_password":"admin"}`, 400, "invalid_input"},
		{"no session", anon, "GET", "/api/v1/users", "", nil, 401, "unauthenticated"},
		{"viewer forbidden", nil, "GET", "/api/v1/users", "", nil, 403, "forbidden"},
	}
	viewer := r.client("")
	viewer.login("bob", bobPW)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			if c == nil {
				c = viewer
			}
			req := c.req(tc.method, tc.path, tc.body)
			switch tc.ctype {
			case "":
			case "-":
				req.Header.Del("Content-Type")
			default:
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, body := c.send(req)
			if resp.StatusCode >= 500 {
				t.Fatalf("5xx for client input: %d %s", resp.StatusCode, body)
			}
			wantError(t, resp, body, tc.status, tc.code)
		})
	}
}
