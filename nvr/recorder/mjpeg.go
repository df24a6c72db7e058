package recorder

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxFrameBytes bounds one JPEG frame when reading a segment.
const MaxFrameBytes = 16 << 20

var (
	// ErrNotJPEG means a segment holds something other than back-to-back JPEG frames.
	ErrNotJPEG = errors.New("not a jpeg frame")
	// ErrTruncated means a segment ends inside a frame.
	ErrTruncated = errors.New("segment ends inside a jpeg frame")

	errShort = errors.New("need more data")
)

// NewFrameScanner returns a scanner whose tokens are the JPEG frames of a segment file, ready
// to be written as the parts of a multipart/x-mixed-replace response. Tokens are only valid
// until the next Scan.
func NewFrameScanner(r io.Reader) *bufio.Scanner {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxFrameBytes)
	s.Split(SplitJPEG)
	return s
}

// SplitJPEG is a bufio.SplitFunc for concatenated JPEG frames. It follows the marker structure
// rather than searching for an end marker, because FF D9 can occur inside table data.
func SplitJPEG(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	n, err := jpegLen(data)
	switch {
	case err == errShort && atEOF:
		return 0, nil, ErrTruncated
	case err == errShort:
		return 0, nil, nil
	case err != nil:
		return 0, nil, err
	}
	return n, data[:n], nil
}

// jpegLen returns the length of the JPEG at the start of b, or errShort if b ends first.
func jpegLen(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, errShort
	}
	if b[0] != 0xFF || b[1] != 0xD8 { // SOI
		return 0, ErrNotJPEG
	}
	i := 2
	for {
		// At a marker: FF, any number of FF fill bytes, the marker code.
		if i >= len(b) {
			return 0, errShort
		}
		if b[i] != 0xFF {
			return 0, ErrNotJPEG
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return 0, errShort
		}
		m := b[i]
		i++
		switch {
		case m == 0xD9: // EOI
			return i, nil
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // TEM, RSTn: no length
			continue
		case m == 0x00 || m == 0xD8:
			return 0, ErrNotJPEG
		}
		if i+2 > len(b) {
			return 0, errShort
		}
		length := int(b[i])<<8 | int(b[i+1])
		if length < 2 {
			return 0, ErrNotJPEG
		}
		i += length
		if m != 0xDA { // not SOS
			continue
		}
		// Entropy-coded data runs to the first FF that is neither stuffing (FF 00), a restart
		// marker, nor a fill byte before a marker.
		for {
			if i >= len(b) {
				return 0, errShort
			}
			j := bytes.IndexByte(b[i:], 0xFF)
			if j < 0 {
				return 0, errShort
			}
			i += j
			if i+1 >= len(b) {
				return 0, errShort
			}
			if next := b[i+1]; next == 0x00 || next >= 0xD0 && next <= 0xD7 {
				i += 2
				continue
			}
			break // a marker (possibly after fill bytes): back to the marker loop
		}
	}
}
