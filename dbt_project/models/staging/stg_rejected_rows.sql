-- Every line the raw assets could not load, one row each (raw.rejected_rows), with the
-- reason's kind split out for counting.
with source as (
    select * from {{ source('raw', 'rejected_rows') }}
)

select
    table_name,
    source_file,
    line_number,
    accident_year,
    column_name,
    split_part(reason, ':', 1) as reason_kind,
    reason,
    raw_line,
    loaded_at
from source
