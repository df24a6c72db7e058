package auth

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/latchnvr/latch/model"
)

// detail and modesJSON are the audit detail as encoding/json writes it:
// the reference detailJSON must match byte for byte.
type detail struct {
	Modes      map[string]string `json:"modes"`
	Effects    []string          `json:"effects,omitempty"`
	RetryAfter float64           `json:"retry_after_seconds,omitempty"`
	Remaining  *int              `json:"remaining,omitempty"`
	Scope      string            `json:"scope,omitempty"`
}

func modesJSON(d model.Decision, console bool) map[string]string {
	m := map[string]string{"principal": d.Modes[model.KindPrincipal].String(), "console": d.Modes[model.KindConsole].String()}
	if !console {
		m["pair"] = d.Modes[model.KindPair].String()
		m["source"] = d.Modes[model.KindSource].String()
	}
	return m
}

func TestDetailJSONMatchesEncodingJSON(t *testing.T) {
	retries := []time.Duration{0, 1, 999, time.Microsecond, 1500 * time.Millisecond, time.Minute - 1, 24 * time.Hour, 1 << 62}
	for _, console := range []bool{false, true} {
		for _, refusal := range []bool{false, true} {
			for i, ra := range retries {
				d := model.Decision{RetryAfter: ra, Effects: model.Effects(i * 37 % 512),
					Modes: [model.NumKinds]model.Mode{model.Mode(i % 3), model.Mode((i + 1) % 3), model.Held, model.Locked}}
				if refusal {
					d.Scope = model.Scope(i % 7)
				}
				remaining := i - 2
				want := detail{Modes: modesJSON(d, console), Effects: d.Effects.Names()}
				if refusal {
					want.Scope, want.RetryAfter = d.Scope.String(), d.RetryAfter.Seconds()
				}
				if remaining >= 0 {
					want.Remaining = &remaining
				}
				wantJSON, err := json.Marshal(want)
				if err != nil {
					t.Fatal(err)
				}
				if got := detailJSON(d, console, refusal, remaining); string(got) != string(wantJSON) {
					t.Errorf("console %v refusal %v retry %v:\n got %s\nwant %s", console, refusal, ra, got, wantJSON)
				}
			}
		}
	}
}

// TestKeyDetailJSONMatchesEncodingJSON: a key change's detail is what
// encoding/json writes for the map it stands for, byte for byte.
func TestKeyDetailJSONMatchesEncodingJSON(t *testing.T) {
	now := model.Instant(10 * time.Minute)
	untils := []model.Instant{0, now - 1, now, now + 1, now + 999, now + model.Instant(time.Microsecond),
		now + model.Instant(1500*time.Millisecond), now + model.Instant(24*time.Hour), model.Forever}
	for i, until := range untils {
		for _, mode := range []model.Mode{model.Open, model.Locked, model.Held} {
			k := model.Key{Mode: mode, Level: uint8(i * 29 % (model.MaxLevel + 1)), Until: until}
			want := mustJSON(map[string]any{"mode": k.Mode.String(), "level": k.Level, "remaining_seconds": k.Remaining(now).Seconds()})
			if got := keyDetailJSON(k, now); string(got) != string(want) {
				t.Errorf("%+v:\n got %s\nwant %s", k, got, want)
			}
		}
	}
}
