package recorder_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRecordingDependsOnNothingInAuth checks SPEC INV-RECORDING at the level of imports: the
// packages that record may import only each other from latch, so nothing in auth, sessions,
// the store or the web can be on the recording path. Each allowed package is checked too,
// which covers the transitive closure.
func TestRecordingDependsOnNothingInAuth(t *testing.T) {
	const module = "github.com/latchnvr/latch/"
	allowed := map[string]string{ // import path → directory, relative to this package
		module + "nvr/clock":                 "../clock",
		module + "nvr/camera":                "../camera",
		module + "nvr/recorder":              ".",
		module + "nvr/recorder/recordertest": "recordertest",
	}
	for pkg, dir := range allowed {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			src, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if _, ok := allowed[path]; strings.HasPrefix(path, module) && !ok {
					t.Errorf("%s (%s) imports %s: recording must not depend on it", pkg, name, path)
				}
			}
		}
	}
}
