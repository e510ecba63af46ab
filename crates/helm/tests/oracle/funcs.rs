//! Sprig and Helm function cases, batched into one chart (one `define` per case, compared
//! through base64 so whitespace and `<no value>` are exact).

pub const VALUES: &str = r#"{
  "str": "Hello World", "num": 42, "big": 1000000, "flt": 1.5, "neg": -3, "zero": 0,
  "t": true, "f": false, "empty": "", "list": [3, "b", 1.5, true], "strs": ["banana", "apple", "cherry", "apple"],
  "map": {"b": 2, "a": {"x": "y"}, "c": [1, 2]}, "nested": {"a": {"b": {"c": "deep"}}},
  "yamlish": "a: 1\nb: [x, y]\n", "jsonish": "{\"k\": [1, 2, {\"z\": null}]}",
  "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
  "multiline": "line one\nline two\n", "spacey": "  trim me  ", "quotes": "it's \"quoted\"",
  "ver": "1.2.3", "labels": {"app.kubernetes.io/name": "x", "tier": "web"}
}"#;

pub const CASES: &[&str] = &[
    // strings
    "{{ upper .Values.str }}|{{ lower .Values.str }}|{{ title \"hello wide-world foo_bar\" }}|{{ untitle \"Hello\" }}",
    "{{ trim .Values.spacey }}|{{ trimAll \"xy\" \"xxhixy\" }}|{{ trimSuffix \"-x\" \"a-x\" }}|{{ trimPrefix \"a-\" \"a-x\" }}",
    "{{ nospace \"a b\\tc\" }}|{{ repeat 3 \"ab\" }}|{{ substr 1 3 \"hello\" }}|{{ substr 2 99 \"hello\" }}|{{ trunc 3 \"hello\" }}|{{ trunc -2 \"hello\" }}|{{ trunc 10 \"hi\" }}",
    "{{ abbrev 5 \"hello world\" }}|{{ initials \"First Try\" }}|{{ swapcase \"aBc\" }}|{{ snakecase \"FirstName\" }}|{{ kebabcase \"FirstName\" }}|{{ camelcase \"http_server\" }}",
    "{{ contains \"cat\" \"catch\" }}|{{ hasPrefix \"ca\" \"cat\" }}|{{ hasSuffix \"at\" \"cat\" }}",
    "{{ quote .Values.str }}|{{ quote 1 2.5 true }}|{{ squote .Values.str }}|{{ quote .Values.quotes }}|{{ quote .Values.missing }}|",
    "{{ cat \"a\" 1 .Values.missing \"b\" }}|{{ indent 2 \"a\\nb\" }}|{{ nindent 4 \"x\" }}",
    "{{ replace \" \" \"-\" .Values.str }}|{{ plural \"one\" \"many\" 1 }}|{{ plural \"one\" \"many\" 2 }}",
    "{{ toString 42 }}|{{ toString .Values.flt }}|{{ toString .Values.list }}|{{ atoi \"42\" }}|{{ atoi \"x\" }}",
    "{{ int \"42\" }}|{{ int 3.9 }}|{{ int64 \"0x1F\" }}|{{ float64 \"1.5\" }}|{{ int .Values.num }}|{{ int \"3.0\" }}",
    "{{ splitList \",\" \"a,b,c\" }}|{{ split \",\" \"a,b\" }}|{{ (split \",\" \"a,b\")._1 }}|{{ splitn \",\" 2 \"a,b,c\" }}",
    "{{ join \"-\" .Values.strs }}|{{ join \",\" .Values.list }}|{{ toStrings .Values.list }}|{{ sortAlpha .Values.strs }}",
    "{{ wrap 5 \"one two three four\" }}|{{ wrapWith 5 \"<br>\" \"one two three\" }}",
    // printf and fmt via Helm
    "{{ printf \"%s-%d-%v-%.2f\" .Values.str 3 .Values.list .Values.flt }}|{{ printf \"%d\" .Values.num }}|{{ printf \"%v\" .Values.big }}",
    // math
    "{{ add 1 2 3 }}|{{ add1 5 }}|{{ sub 10 3 }}|{{ div 10 3 }}|{{ mod 10 3 }}|{{ mul 2 3 4 }}|{{ add .Values.num 1 }}|{{ add .Values.flt 1 }}",
    "{{ max 1 5 3 }}|{{ min 4 2 8 }}|{{ maxf 1.5 2.5 }}|{{ minf 1.5 2.5 }}|{{ floor 1.7 }}|{{ ceil 1.2 }}|{{ round 3.14159 2 }}|{{ round 2.5 0 }}",
    "{{ until 5 }}|{{ untilStep 0 10 3 }}|{{ seq 5 }}|{{ seq 2 5 }}|{{ seq 0 2 10 }}|{{ seq 5 1 }}",
    "{{ addf 1.1 2.2 }}|{{ subf 5.5 1.1 }}|{{ mulf 1.1 3 }}|{{ divf 10 3 }}|{{ add1f 1.5 }}",
    "{{ typeOf (add 1 2) }}|{{ typeOf .Values.num }}|{{ typeOf (int 1) }}|{{ typeOf \"x\" }}|{{ typeOf .Values.list }}|{{ typeOf .Values.map }}",
    "{{ kindOf .Values.num }}|{{ kindOf .Values.list }}|{{ kindOf .Values.map }}|{{ kindIs \"string\" \"x\" }}|{{ typeIs \"int64\" (add 1 1) }}",
    // defaults
    "{{ default \"d\" .Values.missing }}|{{ default \"d\" .Values.empty }}|{{ default \"d\" .Values.str }}|{{ default 5 .Values.zero }}|{{ .Values.missing | default \"piped\" }}",
    "{{ empty .Values.empty }}|{{ empty .Values.zero }}|{{ empty .Values.list }}|{{ empty .Values.missing }}|{{ empty .Values.f }}",
    "{{ coalesce .Values.missing .Values.empty \"c\" }}|{{ ternary \"y\" \"n\" true }}|{{ ternary \"y\" \"n\" false }}|{{ all 1 \"a\" true }}|{{ any 0 \"\" 1 }}",
    "{{ compact (list 1 0 \"\" \"a\" false) }}|{{ deepEqual (list 1 2) (list 1 2) }}|{{ deepEqual .Values.num 42 }}",
    // lists
    "{{ list 1 \"a\" 2.5 }}|{{ first .Values.strs }}|{{ last .Values.strs }}|{{ rest .Values.strs }}|{{ initial .Values.strs }}",
    "{{ append .Values.strs \"x\" }}|{{ prepend .Values.strs \"x\" }}|{{ concat (list 1 2) (list 3) }}|{{ reverse .Values.strs }}|{{ uniq .Values.strs }}",
    "{{ without .Values.strs \"apple\" }}|{{ has \"apple\" .Values.strs }}|{{ has \"kiwi\" .Values.strs }}|{{ slice .Values.strs 1 3 }}|{{ slice .Values.strs 2 }}",
    "{{ chunk 2 .Values.strs }}|{{ first (list) }}|{{ len (list) }}",
    // dicts
    "{{ $d := dict \"a\" 1 \"b\" \"two\" }}{{ $d }}|{{ get $d \"a\" }}|{{ get $d \"zz\" }}|{{ hasKey $d \"b\" }}|{{ keys $d | sortAlpha }}",
    "{{ $d := dict \"a\" 1 }}{{ $_ := set $d \"b\" 2 }}{{ $d }}|{{ unset $d \"a\" }}|{{ $d }}",
    "{{ pick .Values.map \"a\" \"c\" }}|{{ omit .Values.map \"a\" }}|{{ pluck \"b\" .Values.map (dict \"b\" 9) }}|{{ values (dict \"x\" 1) }}",
    "{{ $a := dict \"a\" 1 \"n\" (dict \"x\" 1) }}{{ $b := dict \"a\" 2 \"c\" 3 \"n\" (dict \"y\" 2) }}{{ merge $a $b }}",
    "{{ $a := dict \"a\" 1 \"n\" (dict \"x\" 1) }}{{ $b := dict \"a\" 2 \"c\" 3 \"n\" (dict \"x\" 5) }}{{ mergeOverwrite $a $b }}",
    "{{ dig \"a\" \"b\" \"c\" \"def\" .Values.nested }}|{{ dig \"a\" \"zz\" \"def\" .Values.nested }}|{{ deepCopy .Values.map }}",
    "{{ $x := .Values.map }}{{ $_ := set $x \"new\" 1 }}{{ .Values.map.new }}",
    // encoding
    "{{ b64enc \"hello\" }}|{{ b64dec \"aGVsbG8=\" }}|{{ b32enc \"hello\" }}|{{ b32dec \"NBSWY3DP\" }}|{{ b64dec \"!!\" }}",
    "{{ sha256sum \"hello\" }}|{{ sha1sum \"hello\" }}|{{ adler32sum \"hello\" }}|{{ sha512sum \"a\" | trunc 16 }}",
    // regex
    "{{ regexMatch \"^h.*o$\" \"hello\" }}|{{ regexFind \"l+\" \"hello\" }}|{{ regexFindAll \"[aeiou]\" \"education\" 3 }}|{{ regexFindAll \"[aeiou]\" \"education\" -1 }}",
    "{{ regexReplaceAll \"a(x*)b\" \"-ab-axxb-\" \"${1}W\" }}|{{ regexReplaceAllLiteral \"a(x*)b\" \"-ab-axxb-\" \"${1}\" }}|{{ regexSplit \"z+\" \"pizza\" -1 }}|{{ regexQuoteMeta \"1.2.3\" }}",
    "{{ abbrevboth 5 10 \"1234 5678 9123\" }}|{{ abbrevboth 0 10 \"1234 5678 9123\" }}|{{ abbrevboth 1 3 \"abc\" }}|{{ len (shuffle \"hello\") }}|{{ mustChunk 2 (list 1 2 3) }}",
    "{{ urlParse \"https://user:pw@example.com:8443/a%20b/c?x=1&y=2#frag\" }}|{{ urlParse \"mailto:joe@example.com\" }}|{{ urlParse \"/relative/path?q\" }}",
    "{{ urlJoin (dict \"scheme\" \"https\" \"host\" \"example.com\" \"path\" \"/a b\" \"query\" \"x=1\" \"fragment\" \"f\") }}|{{ urlJoin (urlParse \"http://u@h:1/p?q#f\") }}",
    "{{ date_modify \"-24h\" (toDate \"2006-01-02\" \"2024-03-05\") | date \"2006-01-02\" }}|{{ mustDateModify \"1m\" (toDate \"2006-01-02\" \"2024-03-05\") | unixEpoch }}",
    // paths
    "{{ base \"/a/b.txt\" }}|{{ dir \"/a/b.txt\" }}|{{ ext \"b.tar.gz\" }}|{{ clean \"a//b/../c\" }}|{{ isAbs \"/x\" }}",
    // semver
    "{{ semverCompare \">=1.2.0\" .Values.ver }}|{{ semverCompare \"~1.2\" \"1.3.0\" }}|{{ semverCompare \"^1.0\" \"1.9.9\" }}|{{ semverCompare \">=1.19-0\" .Capabilities.KubeVersion.Version }}",
    "{{ semverCompare \">1.2\" \"1.2.5\" }}|{{ semverCompare \">1.2\" \"1.3.0\" }}|{{ semverCompare \"<1.2\" \"1.1.9\" }}|{{ semverCompare \"<1.2\" \"1.2.0\" }}|{{ semverCompare \"<=1.2\" \"1.2.9\" }}|{{ semverCompare \">=1.2\" \"1.2.0\" }}|{{ semverCompare \"1.2\" \"1.2.7\" }}|{{ semverCompare \"=1.2.3\" \"1.2.3\" }}|{{ semverCompare \"!=1.2.3\" \"1.2.4\" }}|{{ semverCompare \"!=1.2\" \"1.2.9\" }}|{{ semverCompare \"~1\" \"1.9.0\" }}|{{ semverCompare \"~1.2.3\" \"1.2.9\" }}|{{ semverCompare \"~1.2.3\" \"1.3.0\" }}|{{ semverCompare \"~>1.2\" \"1.2.4\" }}|{{ semverCompare \"^0.2.3\" \"0.2.9\" }}",
    "{{ semverCompare \"^0.2.3\" \"0.3.0\" }}|{{ semverCompare \"^0.0.3\" \"0.0.4\" }}|{{ semverCompare \"^1.x\" \"1.5.0\" }}|{{ semverCompare \"1.x\" \"2.0.0\" }}|{{ semverCompare \"*\" \"3.0.0\" }}|{{ semverCompare \">= 1.2, < 2\" \"1.9.9\" }}|{{ semverCompare \">=1.2 <2 || >3\" \"3.1.0\" }}|{{ semverCompare \"1.2.3 - 1.4\" \"1.4.9\" }}|{{ semverCompare \">=1.20.0-0\" \"1.20.0-rc.1\" }}|{{ semverCompare \">=1.20.0\" \"1.20.0-rc.1\" }}|{{ semverCompare \"<1.21.0-0\" \"v1.20.15-gke.100\" }}|{{ semverCompare \"~1.2.3-beta\" \"1.2.3-beta.2\" }}|{{ semverCompare \"^1.2.3-alpha\" \"1.2.4-alpha\" }}|{{ semverCompare \">0.0.0-0\" \"0.0.0\" }}",
    // pre-releases match an AND group in which any comparator names one (Masterminds v3.4)
    "{{ semverCompare \">=1.0.0-0 <3.0.0\" \"2.0.0-rc.1\" }}|{{ semverCompare \">=1.0.0 <3.0.0-0\" \"2.0.0-rc.1\" }}|{{ semverCompare \"1.0.1-0 - 3\" \"2.0.0-rc.1\" }}|{{ semverCompare \">=5 || >=1.0.0\" \"2.0.0-rc.1\" }}|{{ semverCompare \"^1.0.0-0, !=1.5.0\" \"1.5.0-rc.1\" }}",
    "{{ (semver \"1.2.3-beta.1+b5\").Major }}|{{ (semver \"v2.0\").Minor }}|{{ (semver \"1.2.3-rc.1\").Prerelease }}",
    // yaml / json
    "{{ toYaml .Values.map }}",
    "{{ toYaml .Values.ports }}",
    "{{ toYaml .Values.labels | nindent 4 }}",
    "{{ toYaml (dict \"s\" \"true\" \"n\" \"123\" \"e\" \"\" \"y\" \"yes\" \"d\" \"2024-01-01\" \"ml\" \"a\\nb\" \"colon\" \"a: b\" \"hash\" \"a #b\" \"lead\" \" x\" \"star\" \"*x\" \"dash\" \"- x\" \"tab\" \"a\\tb\") }}",
    "{{ toYaml (dict \"f\" 1.5 \"big\" 1e21 \"small\" 0.000001 \"i\" 1000000.0 \"neg\" -0.5 \"mil\" 1234567.5 \"null\" nil \"emptyl\" (list) \"emptym\" (dict)) }}",
    "{{ toYaml (list (list 1 2) (dict \"a\" (list \"x\"))) }}",
    "{{ toYaml (dict \"long\" \"this is a rather long sentence that keeps going and going well past the eighty column limit of the emitter\" \"nested\" (dict \"deeper\" \"another long value with many words in it so that folding happens at some point in the middle of it\")) }}",
    "{{ toYaml (dict \"q\" \"a long: value that needs single quotes because of the colon and it goes on past eighty columns for sure yes\" \"d\" \"a long value with a tab\\there that needs double quotes and it also goes on past the eighty column mark\") }}",
    "{{ toYaml (dict \"trail\" \"line one  \\nline two\" \"lead\" \"\\n leading newline\" \"keep\" \"a\\nb\\n\\n\" \"one\" \"x\\n\" \"emoji\" \"smile 😀\" \"uni\" \"héllo\") }}",
    "{{ toYaml (list \"- dash\" \"? q\" \": c\" \"@at\" \"`tick\" \"%pct\" \"!bang\" \"&amp\" \"*star\" \"{brace\" \"[br\" \"|pipe\" \">gt\" \"'sq\" \"\\\"dq\" \"a,b\" \"#h\" \"x#y\" \"x #y\" \"~\" \"null\" \"Yes\" \"0x1F\" \"1e3\" \"1:20\" \".5\" \"+1\" \"-\" \"---\" \"...\") }}",
    "{{ toYamlPretty (dict \"m\" (dict \"l\" (list 1 \"true\" \"\" (dict \"k\" \"v\" \"z\" (list \"x\")))) \"s\" \"a: b\" \"long\" \"this is a rather long sentence that keeps going and going well past the eighty column limit of the emitter\" \"ml\" \"x\\ny\" \"f\" 1.5 \"n\" nil \"e\" (list) \"d\" \"2024-01-01\" \"y\" \"yes\" \"big\" .Values.big \"b60\" \"1:20\") }}",
    "{{ toYamlPretty .Values.ports }}|{{ toYamlPretty \"x\" }}|{{ toYamlPretty (list) }}",
    "{{ toYaml \"plain\" }}|{{ toYaml 3 }}|{{ toYaml .Values.multiline }}",
    "{{ toJson .Values.map }}|{{ toJson .Values.list }}|{{ toJson \"<&>\" }}|{{ toRawJson \"<&>\" }}|{{ toJson .Values.big }}",
    "{{ toPrettyJson .Values.map }}",
    "{{ fromYaml .Values.yamlish }}|{{ (fromYaml .Values.yamlish).b }}|{{ fromYamlArray \"[1, a]\" }}|{{ fromYaml \"- a\" }}",
    "{{ fromJson .Values.jsonish }}|{{ fromJsonArray \"[1,2]\" }}|{{ fromJson \"{bad\" }}",
    "{{ toYaml (fromYaml \"a:\\n  b: c\\nl:\\n- 1\\n- x: y\\n\") }}",
    "{{ fromYaml \"y: 1\\non: 2\\n3: x\" }}|{{ toYaml (dict \"y\" 1 \"on\" 2 \"null\" 3) }}",
    "{{ $t := fromToml \"title = 'x'\\n[owner]\\nname = \\\"Tom\\\"\\nage = 42\\nratio = 0.5\\nok = true\\nlist = [1, 2, 3]\\n[[items]]\\nk = 1\\n[[items]]\\nk = 2\\n[a.b]\\nc = \\\"d\\\"\\ninline = { x = 1, y = \\\"z\\\" }\\n\" }}{{ $t }}|{{ $t.owner.age | typeOf }}|{{ len $t.items }}",
    "{{ $t := fromToml \"a = 1979-05-27T07:32:00Z\\nb = 1979-05-27\\nc = 07:32:00.5\\nd = 1979-05-27T00:32:00.999999-07:00\\ne = 1979-05-27 07:32:00\\nf = [1979-05-27, 08:00:00]\\ng = 2000-01-01T00:00:00+00:00\\n\" }}{{ range $k, $v := $t }}{{ $k }}={{ $v }} {{ typeOf $v }};{{ end }}|{{ toJson $t }}|{{ $t.a.Year }}|{{ $t.d | date \"2006-01-02 15:04 MST\" }}",
    "{{ toToml (dict \"a\" 1 \"b\" \"s\" \"t\" (dict \"x\" true)) }}",
    // helm objects and functions
    "{{ .Release.Name }}|{{ .Release.Namespace }}|{{ .Release.Service }}|{{ .Release.IsInstall }}|{{ .Release.Revision }}",
    "{{ .Chart.Name }}|{{ .Chart.Version }}|{{ .Chart.AppVersion }}|{{ .Chart.IsRoot }}|{{ .Chart.Description }}",
    "{{ .Capabilities.KubeVersion }}|{{ .Capabilities.KubeVersion.Major }}|{{ .Capabilities.APIVersions.Has \"apps/v1\" }}|{{ .Capabilities.APIVersions.Has \"nope/v9\" }}",
    "{{ .Template.Name }}|{{ .Template.BasePath }}",
    "{{ tpl \"{{ .Values.str }}-{{ .Release.Name }}\" . }}|{{ tpl \"{{ .missing }}\" dict }}",
    "{{ include \"helper\" . }}|{{ include \"helper\" . | upper }}",
    "{{ required \"need\" .Values.str }}|{{ lookup \"v1\" \"Pod\" \"ns\" \"name\" }}|{{ getHostByName \"example.com\" }}",
    "{{ .Files.Get \"files/a.txt\" }}|{{ .Files.GetBytes \"files/a.txt\" }}|{{ .Files.Lines \"files/a.txt\" }}|{{ .Files.Get \"nope\" }}",
    "{{ (.Files.Glob \"files/*\").AsConfig }}",
    "{{ (.Files.Glob \"files/*.txt\").AsSecrets }}",
    "{{ .Files.Get \"bin/x.bin\" | b64enc }}|{{ .Files.Get \"bin/x.bin\" | sha256sum }}|{{ .Files.Get \"bin/x.bin\" | len }}|{{ .Files.Get \"bin/x.bin\" | b32enc }}|{{ .Files.Get \"bin/x.bin\" | sha1sum }}|{{ .Files.Get \"bin/x.bin\" | adler32sum }}",
    "{{ b64dec \"/w==\" | b64enc }}|{{ b64dec \"gICA\" | len }}|{{ b64dec \"w6k=\" | len }}|{{ b32dec \"74======\" | b64enc }}|{{ .Files.GetBytes \"bin/x.bin\" | len }}|{{ (.Files.Glob \"bin/*\").AsSecrets }}",
    "{{ range $path, $_ := .Files.Glob \"**.txt\" }}{{ $path }};{{ end }}",
    // dates (the test machine's local zone applies to helm and to us alike)
    "{{ date \"2006-01-02T15:04:05Z07:00\" (int64 0) }}|{{ date \"Mon Jan 2 15:04:05 MST 2006\" 1700000000 }}|{{ htmlDate 86400 }}",
    "{{ dateInZone \"2006-01-02 15:04 MST -0700\" 1700000000 \"America/New_York\" }}|{{ dateInZone \"Jan _2 03:04:05.000 PM Z07:00\" 1700000000 \"Asia/Kolkata\" }}|{{ dateInZone \"2006\" 0 \"Not/AZone\" }}",
    "{{ toDate \"2006-01-02\" \"2024-03-05\" }}|{{ toDate \"2006-01-02\" \"2024-03-05\" | date \"Jan 2, 2006\" }}|{{ toDate \"2006-01-02\" \"bad\" }}",
    "{{ unixEpoch (toDate \"2006-01-02 15:04\" \"2024-03-05 10:30\") }}|{{ dateModify \"1h30m\" (toDate \"2006-01-02\" \"2024-03-05\") | date \"2006-01-02 15:04\" }}|{{ (toDate \"2006-01-02\" \"2024-03-05\").Year }}",
    "{{ toDate \"2006-01-02T15:04:05Z07:00\" \"2024-03-05T10:30:00+02:00\" | date \"2006-01-02 15:04 -0700\" }}|{{ toDate \"02/01/06 3:04PM\" \"05/03/24 1:30PM\" | unixEpoch }}",
    "{{ toDate \"2006-01-02\" \"2024-03-05\" | toJson }}|{{ list (toDate \"2006-01-02T15:04:05Z07:00\" \"2024-03-05T10:30:00.5+02:00\") | toPrettyJson }}|{{ toDate \"2006-01-02T15:04:05Z07:00\" \"2024-03-05T10:30:00-07:30\" }}",
    "{{ dict \"t\" (toDate \"2006-01-02T15:04:05Z07:00\" \"2024-03-05T10:30:00.123+02:00\") \"u\" (toDate \"2006-01-02\" \"2024-03-05\") | toYaml }}|{{ toDate \"2006-01-02T15:04:05Z07:00\" \"2024-03-05T10:30:00+02:00\" | date \"MST -0700 Z07:00\" }}",
    "{{ duration 95 }}|{{ duration \"95\" }}|{{ duration (int64 3700) }}|{{ durationRound \"2h10m5s\" }}|{{ durationRound \"400h\" }}|{{ durationRound (int64 1500000000) }}|{{ durationRound \"1.5s\" }}",
    "{{ now | date \"2006\" }}|{{ date \"2006\" .Values.flt }}|{{ regexMatch \"^[0-9]+(h[0-9]+m)?[0-9.]*s$\" (ago (int64 0)) }}",
    // crypto: fixed ciphertext from helm, round trips, and certificate/key shapes
    "{{ decryptAES \"s3cret\" \"V1nNKkOAcdupc1lLrKflbYVCCGAY9bkl8S9BplqA9XxwzM3KDJ9wxPahsziQDwN8\" }}|{{ encryptAES \"k\" \"round trip\" | decryptAES \"k\" }}|{{ encryptAES \"k\" \"\" }}|{{ len (randBytes 24) }}",
    "{{ $ca := genCA \"my-ca\" 365 }}{{ hasPrefix \"-----BEGIN CERTIFICATE-----\" $ca.Cert }}|{{ hasPrefix \"-----BEGIN RSA PRIVATE KEY-----\" $ca.Key }}|{{ $c := genSignedCert \"svc\" (list \"10.0.0.1\") (list \"svc.ns.svc\") 30 $ca }}{{ hasPrefix \"-----BEGIN CERTIFICATE-----\" $c.Cert }}|{{ hasSuffix \"-----END RSA PRIVATE KEY-----\\n\" $c.Key }}",
    "{{ $s := genSelfSignedCert \"self\" nil (list \"a.example\") 10 }}{{ hasPrefix \"-----BEGIN CERTIFICATE-----\" $s.Cert }}|{{ hasPrefix \"-----BEGIN EC PRIVATE KEY-----\" (genPrivateKey \"ecdsa\") }}|{{ hasPrefix \"-----BEGIN PRIVATE KEY-----\" (genPrivateKey \"ed25519\") }}|{{ hasPrefix \"-----BEGIN RSA PRIVATE KEY-----\" (genPrivateKey \"rsa\") }}",
    "{{ $k := genPrivateKey \"rsa\" }}{{ $ca := genCAWithKey \"ca\" 1 $k }}{{ eq $ca.Key $k }}|{{ $c := buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc) }}{{ eq $c.Cert $ca.Cert }}",
    "{{ htpasswd \"a:b\" \"pass\" }}|{{ regexMatch \"^user:\\\\$2a\\\\$10\\\\$[./A-Za-z0-9]{53}$\" (htpasswd \"user\" \"pass\") }}|{{ regexMatch \"^\\\\$2a\\\\$10\\\\$[./A-Za-z0-9]{53}$\" (bcrypt \"x\") }}",
    // random values, checked for shape
    "{{ randAlphaNum 12 | len }}|{{ regexMatch \"^[A-Za-z0-9]{12}$\" (randAlphaNum 12) }}|{{ regexMatch \"^[0-9]{5}$\" (randNumeric 5) }}|{{ regexMatch \"^[A-Za-z]{4}$\" (randAlpha 4) }}",
    "{{ regexMatch \"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$\" uuidv4 }}|{{ len (randAscii 7) }}|{{ $r := randInt 5 10 }}{{ and (ge $r 5) (lt $r 10) }}",
];

/// Sprig's `derivePassword` (scrypt with N=32768 is slow in debug builds, so these run as a
/// test of their own, beside the others).
pub const DERIVE_PASSWORD: &[&str] = &[
    "{{ derivePassword 1 \"long\" \"password\" \"user\" \"example.com\" }}|{{ derivePassword 2 \"maximum\" \"s3cr3t\" \"ünï\" \"site.org\" }}|{{ derivePassword 4294967297 \"pin\" \"\" \"\" \"\" }}|{{ derivePassword 7 \"nope\" \"a\" \"b\" \"c\" }}",
    "{{ derivePassword 3 \"basic\" .Values.str \"me\" \"x\" }}",
];

/// `fromToml` failures: BurntSushi/toml's error text (in the result's `Error` key).
pub const TOML_ERRORS: &[&str] = &[
    "{{ (fromToml \"a = \\n\").Error }}",
    "{{ (fromToml \"a = 1\\na = 2\\n\").Error }}",
    "{{ (fromToml \"[t]\\nx=1\\n[t]\\n\").Error }}",
    "{{ (fromToml \"a = \\\"unclosed\\n\").Error }}",
    "{{ (fromToml \"= 1\\n\").Error }}",
    "{{ (fromToml \"a = tru\\n\").Error }}",
    "{{ (fromToml \"a = 0x1G\\n\").Error }}",
    "{{ (fromToml \"x = {a = 1\\n\").Error }}",
    "{{ (fromToml \"a = 1\\nb = [1,\\n\").Error }}",
    "{{ (fromToml \"[a]\\nb = 1\\n[a.c]\\nd = \\n\").Error }}",
    "{{ (fromToml \"a = 'x\\n\").Error }}",
    "{{ (fromToml \"a = 1 b = 2\\n\").Error }}",
    "{{ (fromToml \"[a\\nb = 1\\n\").Error }}",
    "{{ (fromToml \"a = [1 2]\\n\").Error }}",
    "{{ (fromToml \"a.b = 1\\na.b = 2\\n\").Error }}",
    "{{ (fromToml \"a\\n\").Error }}",
    "{{ (fromToml \"a = \\\"\\\\q\\\"\\n\").Error }}",
    "{{ (fromToml \"a = 1.\\n\").Error }}",
    "{{ (fromToml \"a = 01\\n\").Error }}",
    "{{ (fromToml \"a = {b = 1,}\\n\").Error }}",
    "{{ (fromToml \"a = [1, 2,]\\nb = 'ok'\\n\") }}",
    "{{ (fromToml \"a = 'x'\\n[t]\\na = 1\\n[t.u]\\nb = 2\\nb = 3\\n\").Error }}",
    "{{ (fromToml \"a = \\\"x\\\" # c\\nb = \\\"\\\"\\\"\\nmulti\\n\").Error }}",
];
