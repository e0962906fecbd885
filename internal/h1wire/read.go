package h1wire

import (
	"bufio"
	"bytes"
	"io"
)

// ReadHead reads a request head from br into r with ParseHead and consumes
// it, leaving br at the body. r's slices alias br's buffer: they are valid
// until the next read from br, so a caller that reads the body first must
// copy what it keeps. br's buffer bounds the head as MaxHeaderBytes does (a
// head that does not fit is refused with 431, or 414 while the request
// line has not ended), so it should be at least that large.
//
// A connection closed before the first byte of a head is io.EOF; one
// closed inside a head is io.ErrUnexpectedEOF. ReadHead parses again only
// when a new line has arrived, so a head sent a byte at a time costs one
// parse per line, not per byte.
func ReadHead(br *bufio.Reader, r *Request, lim Limits) error {
	lim = lim.withDefaults()
	if _, err := br.Peek(1); err != nil {
		return err
	}
	seen := 0 // bytes already looked at for a line end
	for {
		buf, _ := br.Peek(br.Buffered())
		// Parse when a line has ended, or the buffer has just grown past
		// a limit that ParseHead checks without a line end.
		if seen == 0 || bytes.IndexByte(buf[seen:], '\n') >= 0 ||
			len(buf) > lim.MaxLine+1 && seen <= lim.MaxLine+1 || len(buf) >= lim.MaxHeaderBytes {
			n, err := ParseHead(buf, r, lim)
			if err == nil {
				_, _ = br.Discard(n)
				return nil
			}
			if err != ErrIncomplete {
				return err
			}
		}
		seen = len(buf)
		if len(buf) >= br.Size() {
			if bytes.IndexByte(buf, '\n') < 0 {
				return errLineTooLong
			}
			return errHeadTooLarge
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
}
