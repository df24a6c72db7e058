// Command soakplot draws the server's resident memory over time from soak
// reports (the JSON that -soak.report writes), for docs/PERFORMANCE.md:
//
//	go run ./sim/soak/cmd/soakplot -o docs/soak-rss.svg "4 cameras=/tmp/soak4.json" "16 cameras=/tmp/soak16.json"
//
// The x axis is the simulator's virtual time; each boot of the server is
// its own line segment (kills restart the process, and with it its memory).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/latchnvr/latch/sim/soak"
)

var palette = []color.Color{
	color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff},
	color.RGBA{R: 0x46, G: 0x82, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xc0, G: 0x39, B: 0x2b, A: 0xff},
	color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
}

func main() {
	out := flag.String("o", "soak-rss.svg", "output file (.svg or .png)")
	title := flag.String("title", "latch serve resident memory during the warped soak", "plot title")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: soakplot [-o file.svg] label=report.json ...")
		os.Exit(2)
	}
	p := plot.New()
	p.Title.Text = *title
	p.X.Label.Text = "virtual time (hours)"
	p.Y.Label.Text = "RSS (MiB)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	for i, arg := range flag.Args() {
		label, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "soakplot: want label=report.json, got %q\n", arg)
			os.Exit(2)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soakplot:", err)
			os.Exit(1)
		}
		var rep soak.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			fmt.Fprintf(os.Stderr, "soakplot: %s: %v\n", path, err)
			os.Exit(1)
		}
		col := palette[i%len(palette)]
		byBoot := map[int]plotter.XYs{}
		var boots []int
		for _, s := range rep.RSS {
			if _, ok := byBoot[s.Boot]; !ok {
				boots = append(boots, s.Boot)
			}
			byBoot[s.Boot] = append(byBoot[s.Boot], plotter.XY{X: s.VirtualSeconds / 3600, Y: float64(s.RSSKiB) / 1024})
		}
		for j, b := range boots {
			l, err := plotter.NewLine(byBoot[b])
			if err != nil {
				fmt.Fprintln(os.Stderr, "soakplot:", err)
				os.Exit(1)
			}
			l.LineStyle.Color = col
			l.LineStyle.Width = vg.Points(1.2)
			p.Add(l)
			if j == 0 {
				p.Legend.Add(fmt.Sprintf("%s (%d %s)", label, len(boots), map[bool]string{true: "boot", false: "boots"}[len(boots) == 1]), l)
			}
		}
	}
	p.Add(plotter.NewGrid())
	if err := p.Save(8*vg.Inch, 4*vg.Inch, *out); err != nil {
		fmt.Fprintln(os.Stderr, "soakplot:", err)
		os.Exit(1)
	}
}
