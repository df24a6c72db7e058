// Package deps keeps the pinned modules that packages still being written
// will import in go.mod, so parallel work never races on go get. It is
// deleted once every module is imported by real code.
package deps

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/leanovate/gopter"
	_ "github.com/pquerna/otp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/qmuntal/stateless"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/trustelem/zxcvbn"
	_ "golang.org/x/crypto/argon2"
	_ "golang.org/x/image/font"
	_ "golang.org/x/text/unicode/norm"
	_ "gonum.org/v1/plot"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)

import (
	_ "github.com/chromedp/chromedp"
	_ "github.com/emersion/go-smtp"
)
