package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchnvr/latch/nvr/auth"
	"github.com/latchnvr/latch/nvr/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates that fill the layout.
var pageNames = []string{"activate", "login", "recover", "dashboard", "recordings", "users", "locks", "audit", "settings", "system", "account", "status"}

type pageSet struct {
	t map[string]*template.Template
}

var templateFuncs = template.FuncMap{
	"pathEscape": url.PathEscape,
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return ""
	},
	"size": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict: keys must be strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
	"list": func(v ...string) []string { return v },
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
}

func loadPages() (*pageSet, error) {
	ps := &pageSet{t: map[string]*template.Template{}}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		ps.t[name] = t
	}
	return ps, nil
}

type navItem struct {
	Href, Label string
	Current     bool
}

// pageData is what every template gets; Data is the page's own.
type pageData struct {
	Title              string
	Page               string
	User               *store.User
	CSRF               string
	IsAdmin            bool
	IsOperator         bool
	ProtectionDisabled bool
	Nav                []navItem
	Data               any
}

func (s *Server) newPageData(page, title string, c *caller) pageData {
	d := pageData{Title: title, Page: page}
	if c == nil {
		return d
	}
	u := c.user
	d.User, d.CSRF = &u, c.csrf
	d.IsAdmin = u.Role == store.RoleAdmin
	d.IsOperator = roleRank(u.Role) >= roleRank(store.RoleOperator)
	d.ProtectionDisabled = s.auth.Policy().Disabled
	add := func(href, label, p string) { d.Nav = append(d.Nav, navItem{href, label, p == page}) }
	if !u.MustChangePassword {
		add("/", "Live", "dashboard")
		if d.IsOperator {
			add("/recordings", "Recordings", "recordings")
		}
		if d.IsAdmin {
			add("/users", "Users", "users")
			add("/locks", "Locks", "locks")
			add("/audit", "Auth log", "audit")
			add("/settings", "Settings", "settings")
		}
		add("/system", "System", "system")
	}
	add("/account", "Account", "account")
	return d
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, d pageData) {
	t := s.pages.t[d.Page]
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", d); err != nil {
		s.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

type statusPage struct {
	Heading, Text string
}

func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, code int, heading, text string) {
	c, _ := s.caller(r)
	d := s.newPageData("status", heading, c)
	d.Data = statusPage{heading, text}
	s.render(w, r, code, d)
}

// safeNext accepts only a local path as a redirect target.
func safeNext(v string) string {
	// Browsers drop tabs and newlines inside URLs and treat \ as /, so
	// "/\t/evil" and "/\\evil" would become //evil: refuse all of them.
	if v == "" || len(v) > 512 || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") ||
		strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return "/"
	}
	return v
}

type pageHandler func(w http.ResponseWriter, r *http.Request, c *caller) (title string, data any, err error)

// page requires a session with role min for a UI page; without one it
// sends the browser to the login page.
func (s *Server) page(name string, min store.Role, pending bool, h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.caller(r)
		if err != nil {
			if errors.Is(err, errNoCookie) || errors.Is(err, auth.ErrNoSession) {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.serverError(w, r, err)
			return
		}
		if c.user.MustChangePassword && !pending {
			http.Redirect(w, r, "/account?must_change=1", http.StatusSeeOther)
			return
		}
		if roleRank(c.user.Role) < roleRank(min) {
			s.renderStatus(w, r, http.StatusForbidden, "Not allowed", "This page needs the "+string(min)+" role.")
			return
		}
		title, data, err := h(w, r, c)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		d := s.newPageData(name, title, c)
		d.Data = data
		s.render(w, r, http.StatusOK, d)
	}
}

func (s *Server) pageRoutes(m *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	m.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			s.notFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})))
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /activate", s.pageActivate)
	m.HandleFunc("GET /login", s.pageLogin)
	m.HandleFunc("GET /recover", s.pageRecover)
	m.Handle("GET /{$}", s.page("dashboard", store.RoleViewer, false, s.pageDashboard))
	m.Handle("GET /recordings", s.page("recordings", store.RoleOperator, false, s.pageRecordings))
	m.Handle("GET /users", s.page("users", store.RoleAdmin, false, s.pageUsers))
	m.Handle("GET /locks", s.page("locks", store.RoleAdmin, false, s.pageLocks))
	m.Handle("GET /audit", s.page("audit", store.RoleAdmin, false, s.pageAudit))
	m.Handle("GET /settings", s.page("settings", store.RoleAdmin, false, s.pageSettings))
	m.Handle("GET /system", s.page("system", store.RoleViewer, false, s.pageSystem))
	m.Handle("GET /account", s.page("account", store.RoleViewer, true, s.pageAccount))
}

func (s *Server) pageActivate(w http.ResponseWriter, r *http.Request) {
	ok, err := s.auth.Activated(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, s.newPageData("activate", "Activate", nil))
}

type loginPage struct {
	Activated, Changed, Recovered bool
	Next                          string
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if c, err := s.caller(r); err == nil && c != nil {
		http.Redirect(w, r, safeNext(q.Get("next")), http.StatusSeeOther)
		return
	}
	d := s.newPageData("login", "Sign in", nil)
	d.Data = loginPage{Activated: q.Get("activated") == "1", Changed: q.Get("changed") == "1", Recovered: q.Get("recovered") == "1",
		Next: safeNext(q.Get("next"))}
	s.render(w, r, http.StatusOK, d)
}

type recoverPage struct {
	Username string
}

// pageRecover is self-service recovery (R-RESET): ask for a code, then
// enter it with a new password. It needs no session; a signed-in visitor
// sees it too (recovering another account they know the name of is no
// different from asking anonymously).
func (s *Server) pageRecover(w http.ResponseWriter, r *http.Request) {
	c, _ := s.caller(r)
	d := s.newPageData("recover", "Account recovery", c)
	name := r.URL.Query().Get("user")
	if checkText("user", name, 256) != nil {
		name = ""
	}
	d.Data = recoverPage{Username: name}
	s.render(w, r, http.StatusOK, d)
}

func (s *Server) pageDashboard(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	out := []cameraOut{}
	for _, cam := range s.cameras() {
		out = append(out, cameraJSON(cam))
	}
	return "Live", out, nil
}

type recordingsPage struct {
	Cameras []string
	Today   string
}

func (s *Server) pageRecordings(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	cams, err := s.db.ListCameras(r.Context())
	if err != nil {
		return "", nil, err
	}
	p := recordingsPage{Today: s.clk.Now().UTC().Format("2006-01-02")}
	for _, cam := range cams {
		p.Cameras = append(p.Cameras, cam.Name)
	}
	return "Recordings", p, nil
}

type usersPage struct {
	Users []userOut
	Roles []string
	Self  string
}

func (s *Server) pageUsers(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	users, err := s.db.ListUsers(r.Context())
	if err != nil {
		return "", nil, err
	}
	locked, err := s.lockedUsers(r)
	if err != nil {
		return "", nil, err
	}
	p := usersPage{Roles: []string{"viewer", "operator", "admin"}, Self: c.user.Name}
	for _, u := range users {
		p.Users = append(p.Users, userJSON(u, locked[u.Name]))
	}
	return "Users", p, nil
}

func (s *Server) pageLocks(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	out, err := s.locks(r)
	if err != nil {
		return "", nil, err
	}
	return "Locks", out, nil
}

type auditPage struct {
	Query   map[string]string
	Error   string
	Records []auditOut
	Chain   chainOut
	CSVURL  string
	NextURL string
}

func (s *Server) pageAudit(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	q := r.URL.Query()
	q.Del("format")
	p := auditPage{Query: map[string]string{}}
	for _, k := range []string{"user", "source", "outcome", "since", "until"} {
		p.Query[k] = q.Get(k)
	}
	chain, err := s.verifyChain(r)
	if err != nil {
		return "", nil, err
	}
	p.Chain = chain
	aq, err := parseAuditQuery(q)
	if err != nil {
		p.Error = err.Error()
		return "Auth log", p, nil
	}
	f := aq.filter
	f.Limit = aq.limit
	recs, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		return "", nil, err
	}
	for _, a := range recs {
		p.Records = append(p.Records, auditJSON(a))
	}
	cq := url.Values{}
	for k, v := range p.Query {
		if v != "" {
			cq.Set(k, v)
		}
	}
	cq.Set("format", "csv")
	p.CSVURL = "/api/v1/audit?" + cq.Encode()
	if len(recs) == f.Limit {
		nq := url.Values{}
		for k, v := range p.Query {
			if v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("before", fmt.Sprint(recs[len(recs)-1].ID))
		p.NextURL = "/audit?" + nq.Encode()
	}
	return "Auth log", p, nil
}

// settingsPage is the lock policy (its fields at the top level, as the
// template reads them) and the other device settings.
type settingsPage struct {
	policyOut
	Device settingsOut
}

func (s *Server) pageSettings(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	o := policyJSON(s.auth.Policy())
	sp, err := s.db.GetPolicy(r.Context())
	switch {
	case err == nil:
		o.UpdatedAt, o.UpdatedBy = timeJSON(sp.UpdatedNS), sp.UpdatedBy
	case !errors.Is(err, store.ErrNotFound):
		return "", nil, err
	}
	return "Settings", settingsPage{policyOut: o, Device: s.settingsJSON()}, nil
}

func (s *Server) pageSystem(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	out, err := s.system(r)
	return "System", out, err
}

type accountPage struct {
	MustChange  bool
	TOTPEnabled bool
	Sessions    []sessionOut
}

func (s *Server) pageAccount(w http.ResponseWriter, r *http.Request, c *caller) (string, any, error) {
	list, err := s.db.ListUserSessions(r.Context(), c.user.ID)
	if err != nil {
		return "", nil, err
	}
	p := accountPage{MustChange: c.user.MustChangePassword, TOTPEnabled: len(c.user.TOTPSecret) > 0}
	for _, sess := range list {
		if o := s.sessionJSON(sess, c); o.Active {
			p.Sessions = append(p.Sessions, o)
		}
	}
	return "Account", p, nil
}
