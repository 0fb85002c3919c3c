package sqlscope

import "strings"

type tokenKind int

const (
	kindIdent  tokenKind = iota // bare word: keyword, name or function
	kindQuoted                  // `name` or "name"
	kindString                  // 'literal'
	kindNumber
	kindPunct // operators, parentheses, commas
	kindEOF   // past the last token
)

type token struct {
	kind tokenKind
	text string // verbatim
	pos  int
}

// keyword is the upper-cased text of a bare word, "" for anything else.
func (t token) keyword() string {
	if t.kind != kindIdent {
		return ""
	}
	return strings.ToUpper(t.text)
}

// name is an identifier's name, unquoted.
func (t token) name() string {
	if t.kind != kindQuoted {
		return t.text
	}
	inner := t.text[1 : len(t.text)-1]
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if (c == '\\' || c == t.text[0]) && i+1 < len(inner) {
			i++
			c = inner[i]
		}
		b.WriteByte(c)
	}
	return b.String()
}

// lex splits sql into tokens, dropping white space and comments (which become the
// separating spaces of the rewritten statement). An unterminated literal, quoted
// name or comment is an error, never silently closed.
func lex(sql string) ([]token, error) {
	var toks []token
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '-' && strings.HasPrefix(sql[i:], "--"), c == '#':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return nil, &Error{Pos: i, Token: "/*", Msg: "unterminated comment"}
			}
			i += end + 4
		case c == '\'' || c == '"' || c == '`':
			j, ok := closeQuote(sql, i)
			if !ok {
				return nil, &Error{Pos: i, Token: sql[i:min(len(sql), i+20)], Msg: "unterminated quote"}
			}
			k := kindQuoted
			if c == '\'' {
				k = kindString
			}
			toks = append(toks, token{k, sql[i:j], i})
			i = j
		case isWordStart(c):
			j := i + 1
			for j < len(sql) && isWordPart(sql[j]) {
				j++
			}
			toks = append(toks, token{kindIdent, sql[i:j], i})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9' && !afterName(toks):
			j := i + 1
			for j < len(sql) && (isWordPart(sql[j]) || sql[j] == '.' ||
				(sql[j] == '+' || sql[j] == '-') && (sql[j-1] == 'e' || sql[j-1] == 'E') && !strings.HasPrefix(strings.ToLower(sql[i:j]), "0x")) {
				j++
			}
			toks = append(toks, token{kindNumber, sql[i:j], i})
			i = j
		case c < 0x20 || c >= 0x7f:
			return nil, &Error{Pos: i, Token: sql[i:min(len(sql), i+4)], Msg: "unexpected character outside a quoted literal"}
		default:
			j := i + 1
			for _, op := range []string{"<=>", "<=", ">=", "<>", "!=", "==", "||", "->", "::"} {
				if strings.HasPrefix(sql[i:], op) {
					j = i + len(op)
					break
				}
			}
			toks = append(toks, token{kindPunct, sql[i:j], i})
			i = j
		}
	}
	return toks, nil
}

// afterName reports whether the previous token can be followed by ".name" (a tuple
// element access like t.1 is rare; db.table and alias.column are common).
func afterName(toks []token) bool {
	if len(toks) == 0 {
		return false
	}
	k := toks[len(toks)-1].kind
	return k == kindIdent || k == kindQuoted || toks[len(toks)-1].text == ")"
}

// closeQuote returns the index after the quote that closes the one at sql[i];
// a backslash escapes the next byte and a doubled quote stands for itself.
func closeQuote(sql string, i int) (int, bool) {
	q := sql[i]
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			j++
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

func isWordStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isWordPart(c byte) bool  { return isWordStart(c) || c >= '0' && c <= '9' }
