/**
 * MATLAB Level 5 MAT-file constants shared by the reader (mat.ts) and the writer
 * (matWriter.ts). Source: MathWorks, "MAT-File Format", Level 5.
 */
export const MAT_HEADER_BYTES = 128;
export const MAT_HEADER_TEXT_BYTES = 116;

// Data types (miXXX) of element tags.
export const MI_INT8 = 1;
export const MI_UINT8 = 2;
export const MI_INT32 = 5;
export const MI_UINT32 = 6;
export const MI_MATRIX = 14;
export const MI_COMPRESSED = 15;
export const MI_UTF8 = 16;

// Array classes (mxXXX_CLASS) in an miMATRIX's array flags.
export const MX_SPARSE_CLASS = 5;
export const MX_UINT8_CLASS = 9;
export const MX_OPAQUE_CLASS = 17;
