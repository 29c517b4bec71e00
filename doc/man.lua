-- man.lua - pandoc filter that makes a man page of a Markdown manual in doc/.
--
-- doc/meson.build runs: pandoc -s -f markdown -t man --lua-filter man.lua PAGE.md
-- The Markdown stays the source (it is what the README links to and what GitHub shows); this
-- filter only maps its layout onto man(7) conventions:
--   * the first level-1 heading names the page: "NAME(SECTION)", or "NAME: what it is"
--     (then the section comes from -M section=N, a NAME section is made from the rest, and
--     the text before the first section becomes the DESCRIPTION);
--   * every other heading moves up one level (## -> .SH, ### -> .SS), .SH headings in
--     capitals;
--   * links inside the page or to another Markdown file keep only their text;
--   * table columns get widths from their content (the longest word fits, the rest is shared
--     by how much text each column holds) so that tbl fits them in 80 columns, and their
--     text is left-aligned; a table of two columns (option | meaning), or of more columns
--     whose words alone would fill the width, becomes a list, one entry per row, as man
--     pages list options.

local stringify = pandoc.utils.stringify

local MAN_HEADERS = {
  ['1'] = 'User Commands',
  ['5'] = 'File Formats Manual',
  ['7'] = 'Miscellaneous Information Manual',
  ['8'] = "System Manager's Manual",
}

-- pandoc's man writer sets a table of relative width w in lw(w*70n); an .SH body is indented
-- 7n and a list item 7n more, and tbl puts 3n between columns. A table then fits in 80
-- columns inside one list level (man-db leaves 78) when its widths add up to TABLE_ROOM
-- (with a margin), less the gaps.
local TABLE_SCALE = 70
local TABLE_ROOM = 60

local function upper_inlines(inlines)
  return pandoc.walk_inline(pandoc.Span(inlines), {
    Str = function(s) return pandoc.Str(s.text:upper()) end,
  }).content
end

local function cell_text(cell)
  -- pandoc 2.17: a cell is a table with .contents (a list of blocks)
  return stringify(cell.contents or cell)
end

local function table_rows(tbl)
  local rows = {}
  if tbl.head and tbl.head.rows then
    for _, r in ipairs(tbl.head.rows) do table.insert(rows, r) end
  end
  for _, body in ipairs(tbl.bodies or {}) do
    for _, r in ipairs(body.body or {}) do table.insert(rows, r) end
  end
  return rows
end

local function cell_inlines(cell)
  local blocks = cell.contents or cell
  if #blocks == 1 and (blocks[1].t == 'Plain' or blocks[1].t == 'Para') then
    return blocks[1].content
  end
  return {pandoc.Str(stringify(blocks))}
end

local function row_cells(row)
  return row.cells or row[2] or {}
end

-- A table as a list, one entry per row (.TP): the first cell is the term, the second its
-- text; with more columns, each other cell is a paragraph "heading: text".
local function table_as_list(tbl)
  local heads = {}
  if tbl.head and tbl.head.rows and tbl.head.rows[1] then
    for c, cell in ipairs(row_cells(tbl.head.rows[1])) do heads[c] = cell_text(cell) end
  end
  local items = {}
  for _, body in ipairs(tbl.bodies or {}) do
    for _, row in ipairs(body.body or {}) do
      local cells = row_cells(row)
      local def = {}
      for c = 2, #cells do
        local line = {}
        if #cells > 2 and heads[c] and heads[c] ~= '' then
          line = {pandoc.Emph({pandoc.Str(heads[c] .. ':')}), pandoc.Space()}
        end
        for _, il in ipairs(cell_inlines(cells[c])) do table.insert(line, il) end
        table.insert(def, pandoc.Para(line))
      end
      table.insert(items, {cell_inlines(cells[1]), {def}})
    end
  end
  return pandoc.DefinitionList(items)
end

function Table(tbl)
  local n = #tbl.colspecs
  local longest_word, longest_text, all_text = {}, {}, {}
  for c = 1, n do longest_word[c], longest_text[c], all_text[c] = 4, 4, 0 end
  for _, row in ipairs(table_rows(tbl)) do
    for c, cell in ipairs(row.cells or row[2] or {}) do
      if c <= n then
        local text = cell_text(cell)
        longest_text[c] = math.max(longest_text[c], #text)
        all_text[c] = all_text[c] + #text
        for word in text:gmatch('%S+') do
          longest_word[c] = math.max(longest_word[c], math.min(#word, 30))
        end
      end
    end
  end
  -- Each column gets its longest word; what room is left goes to the columns by how much
  -- text they hold, none wider than its longest cell.
  local room = TABLE_ROOM - 3 * (n - 1)
  local widths, used = {}, 0
  local min_sum = 0
  for c = 1, n do min_sum = min_sum + longest_word[c] end
  if n <= 2 or min_sum > 0.8 * room then return table_as_list(tbl) end
  for c = 1, n do
    widths[c] = longest_word[c]
    used = used + widths[c]
  end
  if used > room then
    for c = 1, n do widths[c] = widths[c] * room / used end
  else
    for _ = 1, n do
      local open, weight = {}, 0
      for c = 1, n do
        if widths[c] < longest_text[c] then
          open[#open + 1] = c
          weight = weight + all_text[c]
        end
      end
      if #open == 0 or room - used < 0.5 or weight == 0 then break end
      local left = room - used
      for _, c in ipairs(open) do
        local add = math.min(left * all_text[c] / weight, longest_text[c] - widths[c])
        widths[c] = widths[c] + add
        used = used + add
      end
    end
  end
  for c = 1, n do
    local spec = tbl.colspecs[c]
    tbl.colspecs[c] = {spec[1], math.floor(widths[c] * 10) / 10 / TABLE_SCALE}
  end
  -- Narrow cells cannot be justified without gaps: left-align them (.na), then go back to
  -- the page's adjustment (.ad).
  return {pandoc.RawBlock('man', '.na'), tbl, pandoc.RawBlock('man', '.ad')}
end

function Link(link)
  local target = link.target
  if target:sub(1, 1) == '#' or target:match('%.md$') or target:match('%.md#') then
    return link.content
  end
  return nil
end

function Pandoc(doc)
  local blocks, title, section, whatis = {}, nil, nil, nil
  local has_name = false
  for _, b in ipairs(doc.blocks) do
    if b.t == 'Header' and b.level == 1 and not title then
      local text = stringify(b.content)
      local name, sec = text:match('^(%S+)%((%w+)%)$')
      if name then
        title, section = name, sec
      else
        local n2, rest = text:match('^(%S+):%s*(.+)$')
        title, whatis = n2 or text, rest
      end
    else
      if b.t == 'Header' then
        b.level = math.max(1, b.level - 1)
        if b.level == 1 then
          b.content = upper_inlines(b.content)
          if stringify(b.content) == 'NAME' then has_name = true end
        end
      end
      table.insert(blocks, b)
    end
  end
  if not doc.meta.title and title then doc.meta.title = pandoc.MetaString(title) end
  if not doc.meta.section and section then doc.meta.section = pandoc.MetaString(section) end
  local sec = doc.meta.section and stringify(doc.meta.section) or ''
  if not doc.meta.header and MAN_HEADERS[sec] then
    doc.meta.header = pandoc.MetaString(MAN_HEADERS[sec])
  end
  if not has_name and title then
    -- The text before the first section describes the program.
    if blocks[1] and not (blocks[1].t == 'Header' and blocks[1].level == 1) then
      table.insert(blocks, 1, pandoc.Header(1, {pandoc.Str('DESCRIPTION')}))
    end
    table.insert(blocks, 1, pandoc.Para({pandoc.Str(title .. ' - ' .. (whatis or title))}))
    table.insert(blocks, 1, pandoc.Header(1, {pandoc.Str('NAME')}))
  end
  return pandoc.Pandoc(blocks, doc.meta)
end
