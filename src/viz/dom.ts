/**
 * A document to draw into: the page's own in a browser, linkedom's in Node, so every chart renders the
 * same SVG on a server as in a notebook.
 */
import { parseHTML } from 'linkedom';

export function serverDocument(): Document {
  if (typeof globalThis.document !== 'undefined') return globalThis.document;
  return parseHTML('<!DOCTYPE html><html><head></head><body></body></html>').document as unknown as Document;
}

/** Serialises a rendered chart (an SVG, or a figure around one). */
export function toSVGString(node: Element): string {
  return node.outerHTML;
}
