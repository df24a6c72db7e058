package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/latchnvr/latch/nvr/store"
)

// SessionPolicy says what a sign-in does while the user already has live
// sessions (issue #4, the seed's "simultaneous logins from different
// endpoints"). It acts on sessions and notifications only: it never locks
// the account and never touches a lock key.
type SessionPolicy string

// The session policies. An endpoint is the client's source as SPEC §1
// canonicalises it (an IPv4 address, an IPv6 /64) together with its user
// agent: one browser on one network is one endpoint, whatever its port or
// proxy.
const (
	// SessionsAllow: any number of sessions, nothing said.
	SessionsAllow SessionPolicy = "allow"
	// SessionsNotify (the default): a sign-in while another session is
	// live from a different endpoint is audited and the user is e-mailed.
	SessionsNotify SessionPolicy = "notify"
	// SessionsReplaceOldest: one live session per user, the newest wins:
	// a sign-in revokes every older live session of the user.
	SessionsReplaceOldest SessionPolicy = "replace-oldest"
)

// SessionPolicies lists the policies, for forms and messages.
var SessionPolicies = []SessionPolicy{SessionsAllow, SessionsNotify, SessionsReplaceOldest}

// ParseSessionPolicy checks a policy's name.
func ParseSessionPolicy(s string) (SessionPolicy, error) {
	for _, p := range SessionPolicies {
		if s == string(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: sessions policy %q: want allow, notify or replace-oldest", ErrInvalidInput, s)
}

// settingSessionsPolicy is the device settings key (store.Device.Settings
// is a JSON object; the service owns this key and keeps every other).
const settingSessionsPolicy = "sessions_policy"

// sessionSetting is the session policy in force and where it came from:
// "flag" (Config.SessionPolicy, from latch serve's options), "device" (the
// device settings) or "default".
type sessionSetting struct {
	policy SessionPolicy
	source string
}

// SessionPolicy returns the session policy in force and where it came
// from: "flag", "device" or "default".
func (s *Service) SessionPolicy() (SessionPolicy, string) {
	v := s.sessions.Load()
	return v.policy, v.source
}

// loadSessionPolicy installs the start-up override, else the stored
// setting, else notify. A stored value this binary does not know (written
// by a newer one) is logged and ignored rather than refusing to start.
func (s *Service) loadSessionPolicy(ctx context.Context, dev store.Device) {
	v := sessionSetting{policy: SessionsNotify, source: "default"}
	if s.sessionOverride != "" {
		v = sessionSetting{policy: s.sessionOverride, source: "flag"}
	} else if raw, ok := settingsMap(dev.Settings)[settingSessionsPolicy]; ok {
		var name string
		if err := json.Unmarshal(raw, &name); err == nil {
			if p, err := ParseSessionPolicy(name); err == nil {
				v = sessionSetting{policy: p, source: "device"}
			} else {
				s.log.WarnContext(ctx, "ignoring the stored sessions policy", "err", err)
			}
		}
	}
	s.sessions.Store(&v)
}

// settingsMap decodes the device settings object (malformed: empty).
func settingsMap(raw json.RawMessage) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return map[string]json.RawMessage{}
	}
	return m
}

// SetSessionPolicy stores the session policy in the device settings,
// audits the change and puts it in force (an admin act). A start-up
// override is replaced until the next start.
func (s *Service) SetSessionPolicy(ctx context.Context, actor Actor, p SessionPolicy) error {
	if _, err := ParseSessionPolicy(string(p)); err != nil {
		return err
	}
	wall := s.clk.Now().UnixNano()
	before, _ := s.SessionPolicy()
	err := s.writeTx(ctx, func(tx *store.Tx) error {
		dev, err := tx.GetDevice(ctx)
		if err != nil {
			return err
		}
		m := settingsMap(dev.Settings)
		m[settingSessionsPolicy] = mustJSON(string(p))
		if err := tx.SetSettings(ctx, mustJSON(m)); err != nil {
			return err
		}
		return s.audit(ctx, tx, actor, "", "", "", "settings_change",
			fmt.Sprintf("sessions policy %s → %s", before, p), map[string]string{settingSessionsPolicy: string(p)}, wall)
	})
	if err != nil {
		return fmt.Errorf("auth: set sessions policy: %w", err)
	}
	s.sessions.Store(&sessionSetting{policy: p, source: "device"})
	return nil
}

// endpoint is where a session is used from (see SessionPolicy).
type endpoint struct {
	source    string // model.Source.String(): canonical
	userAgent string // as stored: at most maxUserAgent bytes
}

// maxUserAgent bounds the user agent kept on a session.
const maxUserAgent = 256

func endpointOf(source, userAgent string) endpoint {
	if len(userAgent) > maxUserAgent {
		userAgent = strings.ToValidUTF8(userAgent[:maxUserAgent], "")
	}
	return endpoint{source: source, userAgent: userAgent}
}

// endpointJSON is an endpoint in audit details.
type endpointJSON struct {
	Source    string `json:"source"`
	UserAgent string `json:"user_agent"`
}

func (e endpoint) json() endpointJSON { return endpointJSON{Source: e.source, UserAgent: e.userAgent} }

// String names an endpoint for people.
func (e endpoint) String() string {
	src := e.source
	if src == "" {
		src = "an unknown address"
	}
	ua := e.userAgent
	if len(ua) > 120 {
		ua = strings.ToValidUTF8(ua[:120], "") + "…"
	}
	if ua == "" {
		ua = "unknown browser"
	}
	return src + " (" + ua + ")"
}
