package camera

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"time"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// sweepPeriod is how long the moving box takes to cross the frame. It is driven by instants, so
// frames skipped under load show up as a jump, as they would on a real camera.
const sweepPeriod = 8 * time.Second

// bars are SMPTE colour bars at 75%, left to right.
var bars = []color.RGBA{
	{191, 191, 191, 255}, // grey
	{191, 191, 0, 255},   // yellow
	{0, 191, 191, 255},   // cyan
	{0, 191, 0, 255},     // green
	{191, 0, 191, 255},   // magenta
	{191, 0, 0, 255},     // red
	{0, 0, 191, 255},     // blue
}

// boxColours tell cameras apart at a glance.
var boxColours = []color.RGBA{
	{255, 255, 255, 255},
	{255, 128, 0, 255},
	{0, 255, 128, 255},
	{255, 0, 128, 255},
}

// renderer draws test-pattern frames and encodes them. It reuses its images and buffer, so one
// renderer belongs to one camera and is used under that camera's capture lock.
type renderer struct {
	bg, img *image.RGBA // bg is the static pattern; img is drawn over a copy of it each frame
	label   *image.RGBA // text is drawn at 1:1 here, then scaled up onto img
	scale   int
	box     image.Rectangle // the moving box at x = 0
	boxFill *image.Uniform
	opts    jpeg.Options
	buf     bytes.Buffer
}

func newRenderer(width, height, quality, variant int) *renderer {
	r := &renderer{
		bg:      image.NewRGBA(image.Rect(0, 0, width, height)),
		img:     image.NewRGBA(image.Rect(0, 0, width, height)),
		label:   image.NewRGBA(image.Rect(0, 0, 7*64+4, 13+4)),
		scale:   1,
		boxFill: image.NewUniform(boxColours[variant%len(boxColours)]),
		opts:    jpeg.Options{Quality: quality},
	}
	if height >= 240 {
		r.scale = 2
	}
	// Top two thirds: colour bars. Bottom third: a black-to-white ramp the box crosses.
	barsBottom := height * 2 / 3
	for i, c := range bars {
		x0, x1 := width*i/len(bars), width*(i+1)/len(bars)
		draw.Draw(r.bg, image.Rect(x0, 0, x1, barsBottom), image.NewUniform(c), image.Point{}, draw.Src)
	}
	for x := range width {
		v := uint8(x * 255 / max(width-1, 1))
		for y := barsBottom; y < height; y++ {
			r.bg.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	side := max(height/8, 4)
	y0 := barsBottom + (height-barsBottom-side)/2
	r.box = image.Rect(0, y0, side, y0+side)
	r.buf.Grow(64 << 10)
	return r
}

// render draws one frame and returns a freshly allocated JPEG, which the caller may share.
func (r *renderer) render(name string, seq uint64, elapsed time.Duration, wall time.Time) ([]byte, error) {
	copy(r.img.Pix, r.bg.Pix)

	travel := r.img.Bounds().Dx() - r.box.Dx()
	phase := elapsed % sweepPeriod
	if phase < 0 {
		phase += sweepPeriod
	}
	x := int(int64(travel) * int64(phase) / int64(sweepPeriod))
	draw.Draw(r.img, r.box.Add(image.Pt(x, 0)), r.boxFill, image.Point{}, draw.Src)

	pad := 4 * r.scale
	r.drawText(name, image.Pt(pad, pad))
	stamp := fmt.Sprintf("%s  #%d", wall.Format("2006-01-02 15:04:05.000 MST"), seq)
	r.drawText(stamp, image.Pt(pad, r.img.Bounds().Dy()-pad-(13+4)*r.scale))

	r.buf.Reset()
	if err := jpeg.Encode(&r.buf, r.img, &r.opts); err != nil {
		return nil, fmt.Errorf("encode jpeg: %w", err)
	}
	return bytes.Clone(r.buf.Bytes()), nil
}

// drawText draws s in white on a black plate with its top-left corner at at, magnified by
// r.scale: basicfont's 7×13 cell is hard to read on a 640×360 frame at 1:1.
func (r *renderer) drawText(s string, at image.Point) {
	if maxRunes := (r.label.Bounds().Dx() - 4) / 7; len(s) > maxRunes {
		s = s[:maxRunes]
	}
	plate := image.Rect(0, 0, 7*len(s)+4, 13+4)
	draw.Draw(r.label, plate, image.Black, image.Point{}, draw.Src)
	d := font.Drawer{
		Dst:  r.label,
		Src:  image.White,
		Face: basicfont.Face7x13,
		Dot:  fixed.P(2, 2+basicfont.Face7x13.Ascent),
	}
	d.DrawString(s)
	dst := image.Rectangle{Min: at, Max: at.Add(plate.Max.Mul(r.scale))}
	xdraw.NearestNeighbor.Scale(r.img, dst, r.label, plate, xdraw.Src, nil)
}
