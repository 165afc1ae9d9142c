// The side panel: one node's summary, signature, location, callers and callees (clickable) and source.
import { escapeHtml as h } from "./format";
import type { DetailPayload, Link } from "./types";

const RELATION_NAMES: Record<string, [string, string]> = {
  // kind: [label when this node is the source, label when it is the target]
  defined_in: ["Defined in", "Members"],
  imports: ["Imports", "Imported by"],
  extends: ["Extends", "Subclasses"],
  implements: ["Implements", "Implemented by"],
  throws: ["Raises", "Raised by"],
  depends_on: ["Depends on", "Dependency of"],
  refs: ["Implemented by", "Referenced by"],
};

const MAX_LINKS = 40;

/** Escaped text with `code` spans (as brain summaries write identifiers) set in monospace. */
export function prose(text: string): string {
  return h(text).replace(/`([^`]+)`/g, "<code>$1</code>");
}

function links(title: string, cls: string, list: Link[]): string {
  if (!list.length) return "";
  const items = list
    .slice(0, MAX_LINKS)
    .map((l) => {
      const where = l.path ? `${l.path}:${l.sites[0] ?? l.line}` : l.type;
      return `<li><a href="#" data-node="${h(l.id)}" title="${h(l.qname)}"><span class="badge t-${h(l.type)}">${h(l.type[0])}</span>${h(l.name)}</a><span class="where">${h(where)}</span></li>`;
    })
    .join("");
  const more = list.length > MAX_LINKS ? `<li class="more">and ${list.length - MAX_LINKS} more</li>` : "";
  return `<section class="rel ${cls}"><h4>${h(title)} <span class="n">${list.length}</span></h4><ul>${items}${more}</ul></section>`;
}

export function renderPanel(d: DetailPayload): string {
  const n = d.node;
  const loc = n.path ? `${n.path}${n.line ? `:${n.line}` : ""}` : "";
  const parts: string[] = [
    `<header><span class="badge t-${h(n.type)}">${h(n.type)}</span><h3 title="${h(n.qname)}">${h(n.name)}</h3>` +
      `<button class="close" data-close title="Close">×</button></header>`,
    n.qname && n.qname !== n.name ? `<div class="qname">${h(n.qname)}</div>` : "",
    loc ? `<div class="loc">${h(loc)}${n.lang ? ` · ${h(n.lang)}` : ""}</div>` : "",
    n.signature ? `<pre class="sig">${h(n.signature)}</pre>` : "",
    n.summary ? `<p class="summary">${prose(n.summary)}</p>` : n.doc ? `<p class="summary doc">${h(n.doc)}</p>` : "",
    links("Callers", "callers", n.callers),
    links("Calls", "callees", n.callees),
  ];
  for (const r of n.relations) {
    const names = RELATION_NAMES[r.kind] ?? [r.kind, r.kind];
    parts.push(links(r.direction === "out" ? names[0] : names[1], `r-${r.kind}-${r.direction}`, r.links));
  }
  if (d.excerpt) {
    const lines = d.excerpt.text.split("\n");
    const body = lines
      .map((l, i) => `<span class="ln">${d.excerpt!.start + i}</span>${h(l)}`)
      .join("\n");
    const note = [d.excerpt.truncated ? "excerpt" : "", d.excerpt.redacted ? `${d.excerpt.redacted} secret(s) redacted` : ""]
      .filter(Boolean)
      .join(" · ");
    parts.push(`<section class="source"><h4>Source${note ? ` <span class="n">${h(note)}</span>` : ""}</h4><pre>${body}</pre></section>`);
  }
  return parts.join("");
}
