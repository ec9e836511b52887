-- Every code of the official code book (seed baac_codes) and of the codes this project
-- derives (seed derived_codes), in one relation: what the code labels and the
-- accepted-codes tests read, by code-book entry ("vehicules.catv") and code.
with official as (
    select * from {{ ref('baac_codes') }}
),

derived as (
    select * from {{ ref('derived_codes') }}
),

unioned as (
    select * from official
    union all
    select * from derived
)

select
    "table" || '.' || "column" as codebook_entry,
    "table" as codebook_table,
    "column" as codebook_column,
    code,
    label_fr,
    label_en
from unioned
