/**
 * GET /docs: the OpenAPI document (openapi.ts) as a page a person reads, rendered here on the
 * server: no script, no CDN, nothing fetched (Swagger UI and Redoc would load a bundle from the
 * network). Each route with its summary, parameters, request body and responses; the schemas
 * as indented JSON. The same strict policy as every page here: styles inline, no script.
 */
import { escapeHtml } from '../util/text.js';

type Json = Record<string, unknown>;

const METHOD_ORDER = ['get', 'post', 'put', 'delete'];
export const DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const json = (v: unknown) => `<pre>${escapeHtml(JSON.stringify(v, null, 2))}</pre>`;

function contentBlock(content: unknown): string {
  if (!content || typeof content !== 'object') return '';
  return Object.entries(content as Json)
    .map(([type, body]) => {
      const schema = (body as Json | undefined)?.schema;
      return `<p class="type"><code>${escapeHtml(type)}</code></p>${schema ? `<details><summary>schema</summary>${json(schema)}</details>` : ''}`;
    })
    .join('');
}

function operation(path: string, method: string, op: Json): string {
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = op.requestBody as Json | undefined;
  const responses = (op.responses as Json | undefined) ?? {};
  return `
<section class="op" id="${escapeHtml(`${method}-${path}`)}">
<h2><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></h2>
${op.summary ? `<p>${escapeHtml(String(op.summary))}</p>` : ''}
${op.description ? `<p class="desc">${escapeHtml(String(op.description))}</p>` : ''}
${params.length ? `<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>required</th><th>description</th></tr>${params
    .map((p) => `<tr><td><code>${escapeHtml(String(p.name))}</code></td><td>${escapeHtml(String(p.in))}</td><td>${p.required ? 'yes' : 'no'}</td><td>${escapeHtml(String(p.description ?? ''))}</td></tr>`)
    .join('')}</table>` : ''}
${body ? `<h3>Request body</h3>${body.description ? `<p>${escapeHtml(String(body.description))}</p>` : ''}${contentBlock(body.content)}` : ''}
<h3>Responses</h3>
<table><tr><th>status</th><th>meaning</th></tr>${Object.entries(responses)
    .map(([status, r]) => `<tr><td><code>${escapeHtml(status)}</code></td><td>${escapeHtml(String((r as Json).description ?? ''))}${contentBlock((r as Json).content)}</td></tr>`)
    .join('')}</table>
</section>`;
}

/** The page for an OpenAPI 3 document. */
export function renderDocsPage(doc: Json): string {
  const info = (doc.info as Json | undefined) ?? {};
  const paths = (doc.paths as Record<string, Json> | undefined) ?? {};
  const ops: string[] = [];
  const index: string[] = [];
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHOD_ORDER) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      ops.push(operation(path, method, op));
      index.push(`<li><a href="#${escapeHtml(`${method}-${path}`)}"><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></a> ${escapeHtml(String(op.summary ?? ''))}</li>`);
    }
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(String(info.title ?? 'API'))}: API documentation</title>
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 980px; margin: 24px auto; padding: 0 16px; color: #1f2328; overflow-wrap: anywhere; }
h1 { font-size: 24px; } h2 { font-size: 18px; border-top: 1px solid #d0d7de; padding-top: 16px; } h3 { font-size: 15px; margin-bottom: 4px; }
.method { display: inline-block; min-width: 48px; text-align: center; border-radius: 4px; color: #fff; font-size: 13px; padding: 2px 6px; }
.get { background: #1f6feb; } .post { background: #1a7f37; } .put { background: #9a6700; } .delete { background: #cf222e; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; font-size: 14px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; font-size: 12px; } ul { padding-left: 20px; } li { margin: 4px 0; }
.desc, .type { color: #59636e; font-size: 14px; }
</style>
</head>
<body>
<h1>${escapeHtml(String(info.title ?? 'API'))} <small>${escapeHtml(String(info.version ?? ''))}</small></h1>
${info.description ? `<p>${escapeHtml(String(info.description))}</p>` : ''}
<p>The machine-readable document: <a href="/openapi.json"><code>/openapi.json</code></a> (OpenAPI ${escapeHtml(String(doc.openapi ?? ''))}).</p>
<ul>${index.join('\n')}</ul>
${ops.join('\n')}
</body>
</html>
`;
}
