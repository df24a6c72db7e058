package recorder

import (
	"fmt"

	"github.com/latchnvr/latch/nvr/camera"
	"github.com/latchnvr/latch/nvr/clock"
)

// Fleet is the NVR's set of cameras, each recorded by its own Recorder.
type Fleet struct {
	cams []*camera.Camera
	recs []*Recorder
}

// StartFleet starts every camera with a recorder made from rec (CameraID set per camera). A
// camera without its own OnError reports through rec.OnError.
func StartFleet(clk clock.Clock, idx SegmentIndex, cams []camera.Config, rec Config) (*Fleet, error) {
	f := &Fleet{}
	seen := make(map[string]bool)
	for _, cc := range cams {
		if seen[cc.ID] {
			f.Stop()
			return nil, fmt.Errorf("start cameras: duplicate camera id %q", cc.ID)
		}
		seen[cc.ID] = true
		if cc.OnError == nil {
			cc.OnError = rec.OnError
		}
		cam, err := camera.New(cc, clk)
		if err != nil {
			f.Stop()
			return nil, fmt.Errorf("start cameras: %w", err)
		}
		rc := rec
		rc.CameraID = cc.ID
		r, err := New(rc, clk, idx)
		if err != nil {
			f.Stop()
			return nil, fmt.Errorf("start cameras: %w", err)
		}
		f.cams = append(f.cams, cam)
		f.recs = append(f.recs, r)
		if err := cam.Start(r); err != nil {
			f.Stop()
			return nil, fmt.Errorf("start cameras: %w", err)
		}
	}
	return f, nil
}

// Cameras returns the cameras in configuration order.
func (f *Fleet) Cameras() []*camera.Camera { return f.cams }

// Camera returns the camera with this id, or nil.
func (f *Fleet) Camera(id string) *camera.Camera {
	for _, c := range f.cams {
		if c.ID() == id {
			return c
		}
	}
	return nil
}

// Flush waits until every finished segment has been offered to the index.
func (f *Fleet) Flush() {
	for _, r := range f.recs {
		r.Flush()
	}
}

// Stop stops every camera, then closes every recorder, so each keeps its partial segment.
func (f *Fleet) Stop() {
	for _, c := range f.cams {
		c.Stop()
	}
	for _, r := range f.recs {
		r.Close()
	}
}
