-- All road users of one accident are in the same split: no accident straddles two.
select
    num_acc,
    count(distinct split) as splits
from {{ ref('ml_features') }}
group by num_acc
having count(distinct split) > 1
