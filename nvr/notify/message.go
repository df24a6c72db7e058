package notify

import (
	"bytes"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchnvr/latch/nvr/store"
)

// Limits on what goes into one e-mail.
const (
	maxSubjectRunes = 200
	maxBodyBytes    = 64 << 10
)

// buildMail renders m as an RFC 5322 message with CRLF line endings. Every
// header value is either produced by net/mail from a parsed address, a
// fixed token, or passed through headerText, so no input can start a new
// header line; the body is quoted-printable, so no input line can be a lone
// "." or exceed the line-length limit.
func buildMail(from, to *mail.Address, domain string, m store.OutboxMessage) []byte {
	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	subject := m.Subject
	if strings.TrimSpace(subject) == "" {
		subject = "Latch notification: " + kindToken(m.Kind)
	}
	header("From", from.String())
	header("To", to.String())
	header("Subject", encodeSubject(subject))
	header("Date", time.Unix(0, m.CreatedNS).UTC().Format(time.RFC1123Z))
	header("Message-ID", messageID(m, domain))
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: no vacation replies or bounces-to-bounces for a robot.
	header("Auto-Submitted", "auto-generated")
	header("X-Latch-Kind", kindToken(m.Kind))
	b.WriteString("\r\n")
	b.Write(encodeBody(m.Body))
	return b.Bytes()
}

// messageID is stable across retries of one outbox message, so a mail
// client shows a message delivered twice (a retry after a lost reply) once.
func messageID(m store.OutboxMessage, domain string) string {
	return fmt.Sprintf("<latch.%d.%d@%s>", m.ID, m.CreatedNS, domain)
}

// mailDomain is the domain of addr, reduced to host-name characters, for
// Message-ID.
func mailDomain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	d := addr[at+1:]
	if at < 0 || d == "" || !isHostname(d) || strings.HasPrefix(d, "[") {
		return "latch.invalid"
	}
	return strings.ToLower(d)
}

// headerText makes s one line of at most maxRunes runes: invalid UTF-8 is
// replaced, control characters (CR and LF above all) become spaces, and
// runs of white space collapse to one.
func headerText(s string, maxRunes int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space, n := false, 0
	for _, r := range s {
		if isControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		need := 1
		if space {
			need = 2
		}
		if n+need > maxRunes {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n += need
	}
	return b.String()
}

// isControl reports C0 and C1 controls, DEL, and the Unicode line and
// paragraph separators: anything that could end or disguise a header line.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029'
}

// encodeSubject returns s as a header value: RFC 2047 Q-encoded words
// (mime.QEncoding) when it is not plain ASCII, folded so no line passes 78
// characters. Plain text that happens to contain "=?" is encoded too, so a
// subject cannot smuggle in an encoded word that a mail client would decode
// into something else.
func encodeSubject(s string) string {
	s = headerText(s, maxSubjectRunes)
	enc := mime.QEncoding.Encode("utf-8", s)
	if enc == s && strings.Contains(s, "=?") {
		enc = forceQ(s)
	}
	// Encoded words are separated by single spaces and contain none;
	// folding there keeps each line short without changing the text.
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

// forceQ Q-encodes s even though it is printable ASCII (mime.QEncoding
// leaves such text alone), as encoded words of at most 75 characters.
func forceQ(s string) string {
	const prefix, suffix, maxWord = "=?utf-8?q?", "?=", 75
	var words []string
	var cur strings.Builder
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			var buf [utf8.UTFMax]byte
			for _, c := range buf[:utf8.EncodeRune(buf[:], r)] {
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if cur.Len() > 0 && len(prefix)+cur.Len()+len(enc)+len(suffix) > maxWord {
			words = append(words, prefix+cur.String()+suffix)
			cur.Reset()
		}
		cur.WriteString(enc)
	}
	if cur.Len() > 0 {
		words = append(words, prefix+cur.String()+suffix)
	}
	return strings.Join(words, " ")
}

// encodeBody normalises line endings, replaces invalid UTF-8, caps the size
// and quoted-printable encodes the result with CRLF line breaks.
func encodeBody(s string) []byte {
	if len(s) > maxBodyBytes {
		s = s[:maxBodyBytes] + "\n[truncated]"
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(s)) // a bytes.Buffer does not fail
	_ = w.Close()
	return b.Bytes()
}

// kindToken is m.Kind reduced to [a-z0-9_], for a header and log field.
func kindToken(kind string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(kind) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		}
		if b.Len() >= 32 {
			break
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}
