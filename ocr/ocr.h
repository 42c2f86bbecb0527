// The OCR pipeline above the model (model-spec §3-§4): task prompts, the `plain` prompt ids,
// streaming UTF-8 decoding, the grounding tags (<|ref|>label<|/ref|><|det|>[[x1,y1,x2,y2]]<|/det|>
// on a 0-999 grid) and the official markdown post-processing, input discovery (PNG, JPEG, PDF,
// folders, stdin), PDF page rendering through poppler-cpp, one page end to end, and its JSON.
#pragma once
#include "model/text_stream.h"
#include "ocr/grounding.h"
#include "ocr/inputs.h"
#include "ocr/markdown.h"
#include "ocr/page.h"
#include "ocr/pdf.h"
#include "ocr/prompt.h"
#include "ocr/pipeline.h"
