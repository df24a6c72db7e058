package recorder_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/latchnvr/latch/nvr/recorder"
)

func encodedFrames(t testing.TB, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 32+8*i, 24))
		for x := range img.Bounds().Dx() {
			for y := range 24 {
				img.Set(x, y, color.RGBA{uint8(x * 7 * (i + 1)), uint8(y * 11), uint8(i * 40), 255})
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 10 + 20*i}); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Bytes())
	}
	return out
}

func scanAll(data []byte) ([][]byte, error) {
	sc := recorder.NewFrameScanner(bytes.NewReader(data))
	var out [][]byte
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out, sc.Err()
}

// handmade is a structurally valid JPEG with every awkward case: FF D9 inside a header
// segment's payload, stuffed FF 00 and a restart marker in the scan, and fill bytes before EOI.
var handmade = []byte{
	0xFF, 0xD8, // SOI
	0xFF, 0xE0, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9, // APP0 whose payload looks like EOI twice
	0xFF, 0xFF, 0xDB, 0x00, 0x03, 0x01, // fill byte, then DQT
	0xFF, 0xDA, 0x00, 0x03, 0x00, // SOS header
	0x12, 0xFF, 0x00, 0x34, // scan data with a stuffed FF
	0xFF, 0xD3, 0x56, // RST3 inside the scan
	0xFF, 0xFF, 0xD9, // fill byte, EOI
}

func TestFrameScanner(t *testing.T) {
	frames := encodedFrames(t, 4)
	frames = append(frames, handmade)
	stream := bytes.Join(frames, nil)

	got, err := scanAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(frames) {
		t.Fatalf("scanned %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d differs", i)
		}
	}

	if got, err := scanAll(nil); err != nil || len(got) != 0 {
		t.Fatalf("empty segment: %d frames, %v", len(got), err)
	}
}

func TestFrameScannerErrors(t *testing.T) {
	frames := encodedFrames(t, 2)
	tests := []struct {
		name       string
		data       []byte
		wantFrames int
		wantErr    error
	}{
		{"truncated last frame", bytes.Join([][]byte{frames[0], frames[1][:len(frames[1])-1]}, nil), 1, recorder.ErrTruncated},
		{"truncated in a header", handmade[:7], 0, recorder.ErrTruncated},
		{"garbage between frames", bytes.Join([][]byte{frames[0], []byte("junk"), frames[1]}, nil), 1, recorder.ErrNotJPEG},
		{"not a jpeg at all", []byte("GIF89a"), 0, recorder.ErrNotJPEG},
		{"zero-length header segment", []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00}, 0, recorder.ErrNotJPEG},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAll(tt.data)
			if len(got) != tt.wantFrames || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %d frames, %v; want %d, %v", len(got), err, tt.wantFrames, tt.wantErr)
			}
		})
	}
}

func FuzzSplitJPEG(f *testing.F) {
	for _, fr := range encodedFrames(f, 2) {
		f.Add(fr)
	}
	f.Add(handmade)
	f.Add(append(bytes.Clone(handmade), handmade...))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, atEOF := range []bool{false, true} {
			adv, tok, err := recorder.SplitJPEG(data, atEOF)
			if adv < 0 || adv > len(data) {
				t.Fatalf("advance %d outside [0, %d]", adv, len(data))
			}
			if err == nil && tok != nil && !bytes.Equal(tok, data[:adv]) {
				t.Fatalf("token is not the consumed prefix")
			}
		}
		// Whatever the scanner yields is the input's prefix, frame after frame.
		got, _ := scanAll(data)
		if joined := bytes.Join(got, nil); !bytes.HasPrefix(data, joined) {
			t.Fatalf("frames are not a prefix of the input")
		}
	})
}

func BenchmarkFrameScanner(b *testing.B) {
	stream := bytes.Join(encodedFrames(b, 4), nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		if _, err := scanAll(stream); err != nil {
			b.Fatal(err)
		}
	}
}
