-- The year read from `an` (2-digit) agrees with the first four digits of Num_Acc, the other
-- place the files record it (raw lineage and stg_users use the latter).
select num_acc, accident_year
from {{ ref('stg_accidents') }}
where accident_year <> num_acc // 100000000
