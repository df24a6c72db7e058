package model

import "testing"

func TestPresetsValid(t *testing.T) {
	for _, n := range PresetNames() {
		p, _ := Preset(n)
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}
