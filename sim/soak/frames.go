package soak

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"regexp"
	"strconv"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/latchnvr/latch/nvr/recorder"
)

// Frame numbers. A gap between two segments of a camera in one boot is
// either a slot in which the camera captured nothing (the process did not
// run: a stall) or a segment that was recorded and lost. The index cannot
// tell them apart (a stall can leave both neighbours full, a lost segment
// can sit beside a short one), but the frames can: the camera numbers
// every frame it captures (camera.Frame.Seq, from 0 at each start) and
// draws the number into the image after the wall time,
// "2006-01-02 15:04:05.000 MST  #N" (nvr/camera/pattern.go). The frames
// on the two sides of a stall are consecutive; on the two sides of a lost
// segment they are not, and the difference is the frames lost.
//
// The stamp is basicfont's 7×13 cells, white on a black plate, at a fixed
// place; frameSeq reads it back by matching each cell against the font's
// glyphs. It needs frames wide enough for the number to be drawn inside
// the image (320×90 does), and it checks what it reads (the stamp's format;
// the numbers within a segment must be consecutive and as many as the
// index says), so a change of the camera's drawing makes the soak fail
// loudly instead of misreading.

// glyphs are basicfont's printable ASCII, rendered as the camera renders
// them (white on black, 7×13).
var glyphs = sync.OnceValue(func() map[rune]*image.Gray {
	face := basicfont.Face7x13
	m := map[rune]*image.Gray{}
	for r := rune(0x20); r < 0x7f; r++ {
		g := image.NewGray(image.Rect(0, 0, 7, 13))
		d := font.Drawer{Dst: g, Src: image.White, Face: face, Dot: fixed.P(0, face.Ascent)}
		d.DrawString(string(r))
		m[r] = g
	}
	return m
})

// stampText is the stamp as far as it can be read: a wall time, its zone,
// and the frame number.
var stampText = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ +#(\d+)`)

// maxGlyphError is the most a cell may differ from its glyph (mean squared
// luma error) and still count as read. JPEG at the camera's quality leaves
// about 10–120 on a right glyph; the second-best glyph is above 1,000.
const maxGlyphError = 600

// frameSeq reads the frame number from one JPEG frame.
func frameSeq(jpg []byte) (uint64, error) {
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		return 0, err
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	// The stamp's place (nvr/camera/pattern.go: render, drawText).
	scale := 1
	if h >= 240 {
		scale = 2
	}
	pad := 4 * scale
	top := h - pad - (13+4)*scale + 2*scale
	var text []rune
	for i := 0; ; i++ {
		x0 := pad + scale*(2+7*i)
		if x0+7*scale > w {
			break
		}
		var cell [13][7]float64
		for y := range 13 {
			for x := range 7 {
				c := color.GrayModel.Convert(img.At(b.Min.X+x0+x*scale+scale/2, b.Min.Y+top+y*scale+scale/2)).(color.Gray)
				cell[y][x] = float64(c.Y)
			}
		}
		best, bestErr := '?', float64(1<<62)
		for r, g := range glyphs() {
			var sum float64
			for y := range 13 {
				for x := range 7 {
					d := cell[y][x] - float64(g.GrayAt(x, y).Y)
					sum += d * d
				}
			}
			if e := sum / 91; e < bestErr {
				best, bestErr = r, e
			}
		}
		if bestErr > maxGlyphError {
			break // past the end of the stamp's plate
		}
		text = append(text, best)
	}
	m := stampText.FindStringSubmatch(string(text))
	if m == nil {
		return 0, fmt.Errorf("no frame number in the stamp (read %q from a %d×%d frame)", string(text), w, h)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

// segmentFrames are the frame numbers of a segment file's first and last
// frames, and how many frames it holds.
type segmentFrames struct {
	first, last uint64
	n           int64
}

// readSegmentFrames reads a segment file's frame numbers and checks that
// they are consecutive: the camera hands the recorder every frame it
// captures, and a segment holds every frame of its slot.
func readSegmentFrames(path string) (segmentFrames, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return segmentFrames{}, err
	}
	var sf segmentFrames
	var last []byte
	sc := recorder.NewFrameScanner(bytes.NewReader(b))
	for sc.Scan() {
		if sf.n == 0 {
			if sf.first, err = frameSeq(sc.Bytes()); err != nil {
				return sf, fmt.Errorf("%s: first frame: %w", path, err)
			}
		}
		last = append(last[:0], sc.Bytes()...)
		sf.n++
	}
	if err := sc.Err(); err != nil {
		return sf, fmt.Errorf("%s: %w", path, err)
	}
	if sf.n == 0 {
		return sf, fmt.Errorf("%s: no frames", path)
	}
	if sf.last, err = frameSeq(last); err != nil {
		return sf, fmt.Errorf("%s: last frame: %w", path, err)
	}
	if sf.last < sf.first || sf.last-sf.first+1 != uint64(sf.n) {
		return sf, fmt.Errorf("%s: frames #%d…#%d are not %d consecutive frames", path, sf.first, sf.last, sf.n)
	}
	return sf, nil
}
