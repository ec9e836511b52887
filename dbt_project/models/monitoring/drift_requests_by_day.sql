-- Per day and feature: how far the requests the API scored have moved from the rows the
-- champion was trained on (the train split of ml_features), as a PSI (formula in the YAML).
-- A Parquet file beside the warehouse (materialized external), which the API reads without
-- ever opening the warehouse.
with training_rows as (
    select * from {{ ref('ml_features') }}
    where split = 'train'
),

requests as (
    select * from {{ ref('stg_prediction_log') }}
),

reference as (
    {{- feature_values_long('training_rows') }}
),

compared as (
    {{- feature_values_long('requests', ['logged_on']) }}
),

{{ psi_ctes('reference', 'compared', ['logged_on']) }}

select
    logged_on,
    feature,
    feature_kind,
    compared_rows as requests,
    round(psi, 6) as psi,
    largest_shift_bin,
    round(largest_shift_reference_share, 6) as largest_shift_training_share,
    round(largest_shift_compared_share, 6) as largest_shift_request_share,
    {{ psi_alert_threshold() }} as alert_threshold,
    psi > {{ psi_alert_threshold() }} as is_above_threshold
from psi
order by logged_on, feature
