-- One row per accident: where it happened, the reported coordinates kept only where they
-- are plausible. A point must lie in its département's bounding box (seed
-- department_bounds, from IGN's Admin Express contours) widened by a margin; whole-degree
-- pairs (42.0 / 2.0) are placeholders. coordinates_status says which rule applied.
with accidents as (
    select
        num_acc,
        accident_year,
        department_code,
        reported_latitude,
        reported_longitude
    from {{ ref('stg_accidents') }}
),

bounds as (
    select * from {{ ref('department_bounds') }}
),

checked as (
    select
        accidents.num_acc,
        accidents.accident_year,
        accidents.department_code,
        accidents.reported_latitude,
        accidents.reported_longitude,
        case
            when accidents.reported_latitude is null or accidents.reported_longitude is null
                then 'not recorded'
            when
                accidents.reported_latitude = trunc(accidents.reported_latitude)
                and accidents.reported_longitude = trunc(accidents.reported_longitude)
                then 'placeholder'
            when bounds.department_code is null then 'département without bounds'
            when
                accidents.reported_latitude
                between bounds.min_latitude - {{ var('coordinates_margin_degrees') }}
                and bounds.max_latitude + {{ var('coordinates_margin_degrees') }}
                and accidents.reported_longitude
                between bounds.min_longitude - {{ var('coordinates_margin_degrees') }}
                and bounds.max_longitude + {{ var('coordinates_margin_degrees') }}
                then 'located'
            else 'outside its département'
        end as coordinates_status
    from accidents
    left join bounds on accidents.department_code = bounds.department_code
)

select
    num_acc,
    accident_year,
    department_code,
    reported_latitude,
    reported_longitude,
    coordinates_status,
    case when coordinates_status = 'located' then reported_latitude end as latitude,
    case when coordinates_status = 'located' then reported_longitude end as longitude
from checked
