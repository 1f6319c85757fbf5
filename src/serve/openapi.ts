/**
 * GET /openapi.json: the API described for clients and code generators. A test checks that
 * its paths and methods are exactly the server's routes.
 */
import { maxHeaderSize } from 'node:http';
import { NUM_CLASSES } from '../config.js';
import { PAGE_ASSET_FILES } from './assets.js';
import { MAX_PATH_SEGMENT } from './errors.js';

export interface OpenApiLimits {
  bodyLimitBytes: number;
  maxFiles: number;
  maxPixels: number;
  topK: number;
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

export function openApiDocument(version: string, limits: OpenApiLimits): Record<string, unknown> {
  const row = {
    type: 'object',
    required: ['input', 'predicted', 'confidence', 'top', 'label', 'error', 'best', 'abstained'],
    properties: {
      input: { type: 'string', description: 'the uploaded file name ("body" for a raw image body)' },
      predicted: { type: ['integer', 'null'], minimum: 0, maximum: 9, description: 'null when the file could not be read or the row abstained (below min_confidence)' },
      confidence: { type: ['number', 'null'], description: 'probability of `best`, 6 decimals' },
      top: { type: 'array', items: { type: 'object', properties: { digit: { type: 'integer' }, prob: { type: 'number' } } } },
      label: { type: 'null', description: 'always null here (a true label is known only for MAT and cache inputs of `svhn predict`)' },
      error: { type: ['string', 'null'], description: 'why this file could not be predicted' },
      best: { type: ['integer', 'null'], minimum: 0, maximum: 9, description: 'the most probable digit, given even when the row abstained (null when the file could not be read)' },
      abstained: { type: 'boolean', description: 'true when `confidence` is below min_confidence: `predicted` is then null' },
    },
  };
  const box = { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 4, description: '[left, top, right, bottom] in the original photo\'s pixels, whole pixels (right and bottom exclusive)' };
  const readRow = {
    type: 'object',
    required: ['input', 'number', 'confidence', 'digits', 'abstained', 'best', 'error'],
    properties: {
      input: { type: 'string', description: 'the uploaded file name ("body" for a raw image body)' },
      number: { type: ['string', 'null'], description: 'the digits left to right ("07" keeps its zero); "" when the photo has no number; null when the row abstained or the photo could not be read' },
      confidence: { type: ['number', 'null'], description: "of the whole number (the product of its digits'); for no number, how sure the reader is there is none; 4 decimals; null for a failed photo" },
      digits: {
        type: 'array',
        description: 'left to right, also when the row abstained; [] for no number or a failed photo',
        items: { type: 'object', required: ['digit', 'confidence', 'box'], properties: { digit: { type: 'integer', minimum: 0, maximum: 9 }, confidence: { type: 'number', description: "the classifier's probability times the box's score, 4 decimals" }, box } },
      },
      abstained: { type: 'boolean', description: 'true when the number\'s confidence is below min_confidence: `number` is then null and `best` holds it; a photo with no number never abstains' },
      best: { type: ['string', 'null'], description: 'the number read, abstained or not ("" for no number; null for a failed photo)' },
      error: { type: ['string', 'null'], description: 'why this photo could not be read' },
    },
  };
  const filesBody = {
    required: true,
    content: {
      'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'array', items: { type: 'string', format: 'binary' } } } } },
      'image/*': { schema: { type: 'string', format: 'binary' } },
      'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    },
  };
  const modelParam = (what: string) => ({ name: 'model', in: 'query', description: `${what} names, comma-separated (default: every one served); naming a model of the other task is 400 WRONG_TASK`, schema: { type: 'string' } });
  const refusals = {
    '400': errorResponse('a bad query parameter, a model of the other task (code WRONG_TASK, naming it and the route it answers on), no file in the request, or a malformed multipart body (code BAD_MULTIPART: no boundary, one over 70 characters, or a body that does not use it or ends before the closing one)'),
    '408': errorResponse('the request did not arrive in time (code REQUEST_TIMEOUT; the connection is closed)'),
    '413': errorResponse('over the body limit or the file count'),
    '415': errorResponse('not multipart/form-data, image/* or application/octet-stream'),
    '422': errorResponse('no file in the request could be read as an image'),
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'svhn serve',
      version,
      description: 'SVHN digit classifiers and house-number readers over HTTP. /v1/predict rows are those of `svhn predict --format jsonl` for the same images, /v1/read rows those of `svhn read --format jsonl` for the same photos.',
    },
    paths: {
      '/': { get: { summary: 'the web page: upload or webcam', responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
      '/assets/{file}': {
        get: {
          summary: "the page's script, style and the tfjs bundle (a fixed list)",
          parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string', enum: PAGE_ASSET_FILES } }],
          responses: { '200': { description: 'the file' }, '404': errorResponse('not one of the page assets') },
        },
      },
      '/healthz': {
        get: {
          summary: 'liveness',
          responses: {
            '200': {
              description: 'up',
              content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' }, models: { type: 'integer' }, tensors: { type: 'integer' }, rssBytes: { type: 'integer' }, uptimeSec: { type: 'number' } } } } },
            },
          },
        },
      },
      '/openapi.json': { get: { summary: 'this document', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': {} } } } } },
      '/docs': { get: { summary: 'this document as a page to read (rendered on the server: no script, nothing fetched)', responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
      '/v1/models': {
        get: {
          summary: "each served model's name, task (classify: a digit model for /v1/predict; read: a reader for /v1/read) and metadata.json",
          responses: {
            '200': {
              description: 'models, in --model order',
              content: { 'application/json': { schema: { type: 'object', properties: { models: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, task: { enum: ['classify', 'read'] }, metadata: { type: 'object' } } } } } } } },
            },
          },
        },
      },
      '/v1/models/{name}/{file}': {
        get: {
          summary: "a model's model.json or a weight file it lists (tfjs layers format, loadable with tf.loadLayersModel)",
          parameters: [
            { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'file', in: 'path', required: true, schema: { type: 'string', examples: ['model.json', 'weights.bin'] } },
          ],
          responses: { '200': { description: 'the file' }, '404': errorResponse('no such model or file') },
        },
      },
      '/v1/predict': {
        post: {
          summary: 'predict digits for one or more images',
          description:
            `Images are brought to 32x32 exactly as \`svhn predict\` does (fit inside, pad with edge pixels). ` +
            `Limits: ${limits.bodyLimitBytes} bytes a request, ${limits.maxFiles} files, ${limits.maxPixels} pixels an image. ` +
            'A file that cannot be read gets a row with an error (200); when none can be read the answer is 422 with the rows.',
          parameters: [
            modelParam('digit model'),
            { name: 'top_k', in: 'query', schema: { type: 'integer', minimum: 1, maximum: NUM_CLASSES, default: limits.topK } },
            { name: 'min_confidence', in: 'query', description: 'rows whose top probability is below this abstain (`predicted` null, `abstained` true, `best` still given); 0: never', schema: { type: 'number', minimum: 0, maximum: 1, default: 0 } },
            { name: 'inputs', in: 'query', description: 'true: also return the 32x32 image the model saw, as PNG data URLs', schema: { type: 'boolean', default: false } },
          ],
          requestBody: filesBody,
          responses: {
            '200': { description: 'one row per file per model', content: { 'application/json': { schema: { $ref: '#/components/schemas/Prediction' } } } },
            ...refusals,
          },
        },
      },
      '/v1/models/{name}/classifier/{file}': {
        get: {
          summary: "a reader's digit classifier: its model.json or a weight file it lists (tfjs layers format)",
          parameters: [
            { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'file', in: 'path', required: true, schema: { type: 'string', examples: ['model.json', 'weights.bin'] } },
          ],
          responses: { '200': { description: 'the file' }, '404': errorResponse('no such reader or file') },
        },
      },
      '/v1/read': {
        post: {
          summary: 'read the house number in one or more whole photos, with each digit\'s box',
          description:
            'Photos are read at their own size as `svhn read` reads them (a longer side over 1600 px scaled down first; boxes given in the original photo\'s pixels). ' +
            `Limits: ${limits.bodyLimitBytes} bytes a request, ${limits.maxFiles} files, ${limits.maxPixels} pixels a photo. ` +
            'A file that cannot be read gets a row with an error (200); when none can be read the answer is 422 with the rows.',
          parameters: [
            modelParam('reader'),
            { name: 'min_confidence', in: 'query', description: 'numbers whose confidence is below this abstain (`number` null, `abstained` true, `best` and the digits still given); 0: never', schema: { type: 'number', minimum: 0, maximum: 1, default: 0 } },
          ],
          requestBody: filesBody,
          responses: {
            '200': { description: 'one row per photo per reader', content: { 'application/json': { schema: { $ref: '#/components/schemas/Reading' } } } },
            ...refusals,
          },
        },
      },
    },
    components: {
      schemas: {
        Error: {
          type: 'object',
          description:
            'Every refusal, on any route. Besides those listed per route, the connection-level ones: 400 BAD_HTTP (the request is not valid HTTP), ' +
            `400 BAD_URL (the path does not percent-decode), 414 URL_TOO_LONG (a path segment over ${MAX_PATH_SEGMENT} characters), ` +
            `431 HEADERS_TOO_LARGE (headers over ${maxHeaderSize / 1024} KiB), 408 REQUEST_TIMEOUT; ` +
            'after BAD_HTTP, HEADERS_TOO_LARGE and REQUEST_TIMEOUT the connection is closed.',
          required: ['error', 'code'],
          properties: { error: { type: 'string', description: 'one line naming the problem (and the flag that sets a limit)' }, code: { type: 'string' } },
        },
        Row: row,
        ReadRow: readRow,
        Reading: {
          type: 'object',
          properties: { models: { type: 'array', items: { type: 'object', properties: { model: { type: 'string' }, rows: { type: 'array', items: { $ref: '#/components/schemas/ReadRow' } } } } } },
        },
        Prediction: {
          type: 'object',
          properties: {
            models: { type: 'array', items: { type: 'object', properties: { model: { type: 'string' }, rows: { type: 'array', items: { $ref: '#/components/schemas/Row' } } } } },
            inputs: { type: 'array', items: { type: ['string', 'null'] } },
          },
        },
      },
    },
  };
}
