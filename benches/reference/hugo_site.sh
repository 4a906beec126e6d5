#!/usr/bin/env bash
# Vendored from the team's benchmark tools: the write_site function of
# /work/shared/bench/hugo_bench.sh (sha256
# f0af22353a2169225009d0c7aba8e534dbfd1ff28d84cfa38032aef8b19e8b98), with
# HIGHLIGHT=0, i.e. `codeFences = false`: Chroma highlighting is off, as in
# the "disk, highlight off" reference rows of /work/shared/bench/README.md.
# The config and the RSS template below are copied verbatim otherwise.
#
# Usage: hugo_site.sh SITE_DIR
# Writes SITE_DIR/config.toml and SITE_DIR/layouts/_default/rss.xml; the
# content (SITE_DIR/content/shorts/*.md, from gen_shorts.py) is the caller's.
# `hugo --quiet` run in SITE_DIR then writes only RSS feeds (home, the
# shorts section, 5 tracks, 40 tags) with every item's full content.
set -euo pipefail

[ "$#" -eq 1 ] || { echo "usage: $0 SITE_DIR" >&2; exit 2; }
site="$1"
mkdir -p "$site/layouts/_default"
cat > "$site/config.toml" <<EOF
baseURL = "https://shorts.example.org/"
title = "Shorts"
languageCode = "en"
# 'taxonomy' = the list-of-terms pages (/tags/, /track/); terms stay enabled.
# 'home' and 'section' stay: their RSS is wanted. 'page' cannot be disabled
# (that drops the shorts from every feed); see the cascade below.
disableKinds = ["taxonomy", "sitemap", "robotsTXT", "404"]
# Hugo 0.111 logs an ERROR (and exits 255) when 'taxonomy' is disabled,
# warning that its meaning changed in 0.73, unless silenced:
ignoreErrors = ["error-disable-taxonomy"]

[taxonomies]
tag = "tags"
# Front matter key is 'track' (a string); Hugo needs key == plural name.
track = "track"

[permalinks]
track = "/tracks/:slug/"

[outputs]
home = ["RSS"]
section = ["RSS"]
term = ["RSS"]

[services.rss]
limit = -1

[markup.highlight]
codeFences = false

# Regular pages stay in collections with permalinks, but are not written
# (outputs.page = [] falls back to HTML, so this is the only way).
[[cascade]]
  [cascade._build]
    render = "link"
    list = "always"
  [cascade._target]
    kind = "page"
EOF
cat > "$site/layouts/_default/rss.xml" <<'EOF'
{{- $pages := .RegularPages -}}
{{- if .IsHome -}}{{- $pages = .Site.RegularPages -}}{{- end -}}
{{- printf "<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>" | safeHTML }}
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{{ if .IsHome }}{{ .Site.Title }}{{ else }}{{ .Title }} on {{ .Site.Title }}{{ end }}</title>
<link>{{ .Permalink }}</link>
<description>{{ if .IsHome }}All shorts{{ else }}Shorts in {{ .Title }}{{ end }}</description>
<language>{{ .Site.LanguageCode }}</language>
{{- with .OutputFormats.Get "RSS" }}
{{ printf "<atom:link href=%q rel=\"self\" type=%q />" .Permalink .MediaType | safeHTML }}
{{- end }}
{{- if not .Date.IsZero }}
<lastBuildDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</lastBuildDate>
{{- end }}
{{- range $pages }}
<item>
<title>{{ .Title }}</title>
<link>{{ .Permalink }}</link>
<guid isPermaLink="true">{{ .Permalink }}</guid>
<pubDate>{{ .Date.Format "Mon, 02 Jan 2006 15:04:05 -0700" | safeHTML }}</pubDate>
{{- range .Params.tags }}
<category>{{ . }}</category>
{{- end }}
<description>{{ .Content | html }}</description>
</item>
{{- end }}
</channel>
</rss>
EOF
