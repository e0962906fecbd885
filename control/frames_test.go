package control

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestFrameReader reads frames shorter and longer than the read buffer,
// and streams that end between frames, inside one, or with one too long.
func TestFrameReader(t *testing.T) {
	big := strings.Repeat("b", 3*frameBuffer+17)
	huge := strings.Repeat("h", 5*frameBuffer)
	for _, tc := range []struct {
		name   string
		stream string
		max    int
		want   []string
		err    error // the error after want; nil is io.EOF
	}{
		{"small", "a\n{}\n\n", 1 << 20, []string{"a", "{}", ""}, nil},
		{"big between small", "a\n" + big + "\nc\n" + big + "\n", 1 << 20, []string{"a", big, "c", big}, nil},
		{"cut inside a small frame", "a\nbc", 1 << 20, []string{"a"}, errTruncated},
		{"cut inside a big frame", "a\n" + big, 1 << 20, []string{"a"}, errTruncated},
		{"exactly max", big + "\n", len(big), []string{big}, nil},
		{"over max, in the buffer", "abcdef\n", 5, nil, errors.New("frame over 5 bytes")},
		{"over max, past the buffer", "a\n" + huge + "\n", 2 * frameBuffer, []string{"a"}, errors.New("frame over")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFrameReader(strings.NewReader(tc.stream), tc.max)
			for i, w := range tc.want {
				got, err := f.next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(got, []byte(w)) {
					t.Fatalf("frame %d: %d bytes, want %d", i, len(got), len(w))
				}
			}
			_, err := f.next()
			switch {
			case tc.err == nil && !errors.Is(err, io.EOF):
				t.Fatalf("after the frames: %v, want io.EOF", err)
			case tc.err == errTruncated && !errors.Is(err, errTruncated):
				t.Fatalf("after the frames: %v, want %v", err, errTruncated)
			case tc.err != nil && tc.err != errTruncated && (err == nil || !strings.Contains(err.Error(), tc.err.Error())):
				t.Fatalf("after the frames: %v, want %q", err, tc.err)
			}
		})
	}
}

// TestFrameReaderDropsBigBuffer checks that the buffer a long frame was
// assembled in is not held once the next frame is read.
func TestFrameReaderDropsBigBuffer(t *testing.T) {
	big := strings.Repeat("b", 4*frameBuffer)
	f := newFrameReader(strings.NewReader(big+"\nsmall\n"), 1<<20)
	if got, err := f.next(); err != nil || len(got) != len(big) {
		t.Fatalf("first frame: %d bytes, %v", len(got), err)
	}
	if got, err := f.next(); err != nil || string(got) != "small" {
		t.Fatalf("second frame: %q, %v", got, err)
	}
	if f.big != nil {
		t.Fatalf("a buffer of %d bytes is held after a small frame", cap(f.big))
	}
}
