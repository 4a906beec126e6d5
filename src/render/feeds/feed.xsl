<?xml version="1.0" encoding="utf-8"?>
<!--
  Turns rss.xml or atom.xml, opened in a browser, into a page: the feed's
  title, each item's title as a link, its date as people write it and its
  summary. Feed readers never read this file. A browser without XSLT uses
  the feed's second stylesheet, feed.css, on the XML instead.
  @FEED_CSS@ is replaced by the stylesheet's path when the site is built.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="utf-8" doctype-system="about:legacy-compat"/>

  <xsl:variable name="months" select="'JanFebMarAprMayJunJulAugSepOctNovDec'"/>

  <xsl:template match="/">
    <xsl:variable name="feed" select="rss/channel | atom:feed"/>
    <html lang="{($feed/language | $feed/@xml:lang)[1]}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$feed/title | $feed/atom:title"/> (web feed)</title>
        <link rel="stylesheet" href="@FEED_CSS@"/>
      </head>
      <body class="feed-page">
        <main>
          <xsl:apply-templates select="$feed"/>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="channel | atom:feed">
    <p class="feed-about">
      <strong>This is a web feed.</strong>
      Copy its address into your feed reader to follow it:
      <code><xsl:value-of select="(atom:link[@rel = 'self']/@href)[1]"/></code>
    </p>
    <header>
      <h1><xsl:value-of select="title | atom:title"/></h1>
      <p class="feed-description"><xsl:value-of select="description | atom:subtitle"/></p>
      <p><a href="{(link | atom:link[@rel = 'alternate']/@href)[1]}">Read it on the website</a></p>
    </header>
    <xsl:choose>
      <xsl:when test="item | atom:entry">
        <ol class="feed-items">
          <xsl:apply-templates select="item | atom:entry"/>
        </ol>
      </xsl:when>
      <xsl:otherwise>
        <p class="feed-empty">Nothing here yet.</p>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template match="item | atom:entry">
    <li>
      <article>
        <h2><a href="{(link | atom:link[@rel = 'alternate']/@href)[1]}"><xsl:value-of select="title | atom:title"/></a></h2>
        <p class="feed-date">
          <xsl:choose>
            <xsl:when test="pubDate">
              <xsl:call-template name="rfc822">
                <xsl:with-param name="date" select="normalize-space(pubDate)"/>
              </xsl:call-template>
            </xsl:when>
            <!-- When it was published, as RSS has it, not when it last changed. -->
            <xsl:when test="atom:published">
              <xsl:call-template name="rfc3339">
                <xsl:with-param name="date" select="atom:published"/>
              </xsl:call-template>
            </xsl:when>
            <xsl:otherwise>
              <xsl:call-template name="rfc3339">
                <xsl:with-param name="date" select="atom:updated"/>
              </xsl:call-template>
            </xsl:otherwise>
          </xsl:choose>
        </p>
        <p class="feed-summary">
          <xsl:choose>
            <!-- An RSS description is HTML (the summary, escaped): the
                 browser decodes it as it would in a page. -->
            <xsl:when test="description">
              <xsl:value-of select="description" disable-output-escaping="yes"/>
            </xsl:when>
            <xsl:otherwise>
              <xsl:value-of select="atom:summary"/>
            </xsl:otherwise>
          </xsl:choose>
        </p>
      </article>
    </li>
  </xsl:template>

  <!-- RSS: "Sun, 7 Jun 2026 20:00:00 +0200". -->
  <xsl:template name="rfc822">
    <xsl:param name="date"/>
    <xsl:variable name="rest" select="substring-after($date, ', ')"/>
    <xsl:variable name="month" select="substring-before(substring-after($rest, ' '), ' ')"/>
    <xsl:call-template name="day">
      <xsl:with-param name="raw" select="$date"/>
      <xsl:with-param name="year" select="substring(substring-after(substring-after($rest, ' '), ' '), 1, 4)"/>
      <xsl:with-param name="month" select="(string-length(substring-before($months, $month)) div 3) + 1"/>
      <xsl:with-param name="day" select="number(substring-before($rest, ' '))"/>
      <xsl:with-param name="known" select="string-length($month) = 3 and contains($months, $month)"/>
    </xsl:call-template>
  </xsl:template>

  <!-- Atom: "2026-06-07T20:00:00+02:00". -->
  <xsl:template name="rfc3339">
    <xsl:param name="date"/>
    <xsl:variable name="month" select="number(substring($date, 6, 2))"/>
    <xsl:call-template name="day">
      <xsl:with-param name="raw" select="$date"/>
      <xsl:with-param name="year" select="substring($date, 1, 4)"/>
      <xsl:with-param name="month" select="$month"/>
      <xsl:with-param name="day" select="number(substring($date, 9, 2))"/>
      <xsl:with-param name="known" select="$month &gt;= 1 and $month &lt;= 12"/>
    </xsl:call-template>
  </xsl:template>

  <!-- "Jun 7, 2026", as the site's pages write dates; the date as the feed
       has it when it cannot be read. -->
  <xsl:template name="day">
    <xsl:param name="raw"/>
    <xsl:param name="year"/>
    <xsl:param name="month"/>
    <xsl:param name="day"/>
    <xsl:param name="known"/>
    <xsl:choose>
      <xsl:when test="$known and $day &gt;= 1 and $day &lt;= 31 and string-length($year) = 4">
        <time datetime="{$year}-{format-number($month, '00')}-{format-number($day, '00')}">
          <xsl:value-of select="concat(substring($months, ($month - 1) * 3 + 1, 3), ' ', $day, ', ', $year)"/>
        </time>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$raw"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
