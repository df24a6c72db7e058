package trace

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

const specExample = `{"op":"user","user":"alice","password":"good","role":"admin"}
{"at":"0s","user":"alice","source":"10.0.0.2","password":"bad"}
{"at":"30s","op":"unlock","user":"alice"}
{"at":"1h","op":"restart"}
{"at":"1h","op":"wall_jump","by":"-8760h"}
`

func TestReadsTheSpecExampleAndWritesItBack(t *testing.T) {
	r := NewReader(strings.NewReader(specExample))
	var buf bytes.Buffer
	w := NewWriter(&buf)
	n := 0
	for {
		l, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if err := w.Write(l); err != nil {
			t.Fatal(err)
		}
	}
	if n != 5 {
		t.Fatalf("%d lines", n)
	}
	// Equivalent after re-serialising: parse the output and compare.
	r2 := NewReader(&buf)
	r1 := NewReader(strings.NewReader(specExample))
	for {
		a, _, e1 := r1.Next()
		b, _, e2 := r2.Next()
		if e1 != nil || e2 != nil {
			if !errors.Is(e1, io.EOF) || !errors.Is(e2, io.EOF) {
				t.Fatalf("%v %v", e1, e2)
			}
			break
		}
		if a.Time() != b.Time() || a.Op != b.Op || a.User != b.User || a.Source != b.Source || a.Password != b.Password {
			t.Fatalf("not equivalent: %+v vs %+v", a, b)
		}
	}
}

func TestMalformedLinesAreNamedAndNothingAfterIsRead(t *testing.T) {
	cases := []struct {
		trace, want string
		line        int
	}{
		{`{"at":"0s","user":"a","source":"1.2.3.4","password":"x"}` + "\n" + `{"at":"1s","user":` + "\n", "malformed JSON", 2},
		{`{"at":"1s","op":"explode"}`, `unknown op "explode"`, 1},
		{`{"at":"1s","user":"a","password":"x"}`, `needs "source"`, 1},
		{`{"user":"a","source":"1.2.3.4"}`, `missing "at"`, 1},
		{`{"at":"5s","op":"restart"}` + "\n" + `{"at":"4s","op":"restart"}`, "before the previous line", 2},
		{`{"at":"1s","op":"wall_jump"}`, `needs "by"`, 1},
		{`{"at":"soon","op":"restart"}`, "invalid duration", 1},
		{`{"at":"1s","op":"restart","colour":"red"}`, "unknown field", 1},
		{`{"at":"1s","op":"restart"} {"at":"2s","op":"restart"}`, "more than one JSON value", 1},
		{`{"at":"1s","user":"a","channel":"phone","source":"1.2.3.4"}`, "channel must be", 1},
	}
	for _, c := range cases {
		r := NewReader(strings.NewReader(c.trace + "\n" + `{"at":"9h","op":"restart"}`))
		var err error
		for err == nil {
			_, _, err = r.Next()
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != c.line || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want line %d containing %q", c.trace, err, c.line, c.want)
		}
		if _, _, again := r.Next(); again != err {
			t.Errorf("reader went on after a malformed line")
		}
	}
}
